"""The evaluation agent: levels and Q-Align read-out by hand, Eq. 8 against scipy, the level cross-entropy
against the backbone's own LM loss, the head on the last prompt token, save/load, LoRA split, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats
from transformers import AutoConfig, AutoModel

from rlkit.metrics import editrefiner_overall
from rlkit.policies import EvaluationAgent, EvaluationAgentConfig
from rlkit.policies.evaluation import LEVELS, level_expectation, level_of, levels_of, pearson, score_loss
from rlkit.testing import one_torch_thread, tiny_model_path


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def agent():
    torch.manual_seed(0)
    return EvaluationAgent.from_backbone(tiny_model_path("qwen3_vl"), image_size=64, head_dims=(32,),
                                         head_dropout=(0.0,), lora_r=4, lora_alpha=8, lora_dropout=0.0).eval()


def _images(n, h=64, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(3, h, w, generator=g) for _ in range(n)]


def test_levels_are_five_equal_bins_and_the_expectation_uses_qalign_weights():
    assert LEVELS == ("bad", "poor", "fair", "good", "excellent")
    cases = {0: 0, 19.99: 0, 20: 1, 39.9: 1, 40: 2, 59.99: 2, 60: 3, 79.9: 3, 80: 4, 99.5: 4, 100: 4}
    assert {s: level_of(s) for s in cases} == cases
    assert levels_of(np.array(list(cases))).tolist() == list(cases.values())
    for bad in (-0.1, 100.1, float("nan")):
        with pytest.raises(ValueError, match=r"\[0, 100\]"):
            level_of(bad)
    one_hot = torch.eye(5)
    assert level_expectation(one_hot).tolist() == [0.0, 25.0, 50.0, 75.0, 100.0]
    assert float(level_expectation(torch.full((5,), 0.2))) == pytest.approx(50.0)
    assert float(level_expectation(torch.tensor([0.5, 0, 0, 0, 0.5]))) == pytest.approx(50.0)


def test_eq8_is_mse_plus_one_minus_pearson_per_dimension():
    rng = np.random.default_rng(0)
    p, t = rng.uniform(0, 1, (12, 3)), rng.uniform(0, 1, (12, 3))
    loss, comps = score_loss(torch.tensor(p), torch.tensor(t), names=("a", "b", "c"))
    want = sum(np.mean((p[:, d] - t[:, d]) ** 2) + 1 - stats.pearsonr(p[:, d], t[:, d]).statistic for d in range(3))
    assert float(loss) == pytest.approx(want, rel=1e-9)
    assert float(comps["plcc/b"]) == pytest.approx(stats.pearsonr(p[:, 1], t[:, 1]).statistic)
    # a memory of earlier samples joins the PLCC (not the MSE); its values get no gradient
    mp, mt = rng.uniform(0, 1, (20, 3)), rng.uniform(0, 1, (20, 3))
    pt = torch.tensor(p, requires_grad=True)
    loss2, _ = score_loss(pt, torch.tensor(t), memory_pred=torch.tensor(mp), memory_target=torch.tensor(mt))
    allp, allt = np.concatenate([p, mp]), np.concatenate([t, mt])
    want2 = sum(np.mean((p[:, d] - t[:, d]) ** 2) + 1 - stats.pearsonr(allp[:, d], allt[:, d]).statistic
                for d in range(3))
    assert float(loss2.detach()) == pytest.approx(want2, rel=1e-9)
    loss2.backward()
    assert pt.grad is not None and torch.isfinite(pt.grad).all()


def test_eq8_guards_constant_targets_and_floors_a_constant_head():
    t = torch.tensor([[0.5], [0.5], [0.5], [0.51]])  # target std 0.004 < 0.02: PLCC undefined -> MSE only
    p = torch.tensor([[0.1], [0.2], [0.3], [0.4]])
    loss, comps = score_loss(p, t)
    assert "plcc/0" not in comps and float(loss) == pytest.approx(float(((p - t) ** 2).mean()))
    # a near-constant head (std 1e-4) still gets a finite correlation gradient: its std is floored at 0.02
    x = torch.tensor([0.5, 0.5001, 0.4999, 0.5], requires_grad=True)
    y = torch.tensor([0.1, 0.9, 0.2, 0.8])
    r = pearson(x, y, min_std=0.02)
    xc, yc = x.detach() - x.detach().mean(), y - y.mean()
    assert float(r) == pytest.approx(float((xc * yc).mean() / (0.02 * yc.pow(2).mean().sqrt())), rel=1e-5)
    r.backward()
    assert torch.isfinite(x.grad).all() and float(x.grad.abs().max()) < 1e3


def test_score_protocol_overall_and_round_trip(agent, tmp_path):
    src, ed = _images(3), [Image.new("RGB", (80, 48), (200, 30, 30)), *_images(2, 48, 80, 1)]
    s = agent.score(src, ed, ["Brighten the image.", "warm it up", ""])
    assert s.shape == (3, 3) and s.dtype == np.float64 and (s >= 0).all() and (s <= 100).all()
    np.testing.assert_allclose(agent.overall(src, ed, "x"), editrefiner_overall(*agent.score(src, ed, "x").T))
    agent.save_pretrained(tmp_path / "ev")
    assert (tmp_path / "ev" / "model.safetensors").is_file() and (tmp_path / "ev" / "tokenizer.json").is_file()
    assert isinstance(AutoConfig.from_pretrained(tmp_path / "ev"), EvaluationAgentConfig)
    back = AutoModel.from_pretrained(tmp_path / "ev")
    assert type(back) is EvaluationAgent
    np.testing.assert_array_equal(back.score(src, ed, ["Brighten the image.", "warm it up", ""]), s)
    base = EvaluationAgent.untrained(tmp_path / "ev", backbone=tiny_model_path("qwen3_vl"), seed=3)
    assert base.name == "untrained" and list(base.config.head_dims) == list(agent.config.head_dims)
    for (n, p), (n2, p2) in zip(base.backbone.named_parameters(), agent.backbone.named_parameters()):
        assert n == n2 and (torch.equal(p, p2) or "lora_" in n)  # the base checkpoint; LoRA B = 0 either way
    assert base.score(src, ed, "x").shape == (3, 3)
    both = back.predict(src, ed, "x", readouts=("head", "levels"))
    np.testing.assert_allclose(both["head"], agent.score(src, ed, "x"), atol=1e-5)
    assert both["levels"].shape == (3, 3) and (both["levels"] >= 0).all() and (both["levels"] <= 100).all()


def test_head_reads_the_last_prompt_token(agent):
    """The answer tokens after the prompt (the stage-1 level words) cannot change the head's scores."""
    src, ed = _images(2), _images(2, seed=3)
    scores = np.array([[10.0, 50.0, 95.0], [70.0, 30.0, 0.0]])
    with torch.no_grad():
        plain = agent(**{k: v for k, v in agent.encode(src, ed, ["a", "b"]).items()}).scores
        enc = agent.encode(src, ed, ["a", "b"], scores=scores, with_levels=True)
        enc.pop("scores"), enc.pop("level_labels")
        with_answer = agent(**enc).scores
    torch.testing.assert_close(plain, with_answer, atol=1e-4, rtol=0)


def test_level_loss_is_the_backbones_lm_loss_on_the_level_words(agent):
    src, ed = _images(2), _images(2, seed=5)
    scores = np.array([[10.0, 50.0, 95.0], [70.0, 30.0, 0.0]])
    enc = agent.encode(src, ed, ["warm it up", "x"], scores=scores, with_levels=True)
    labels = enc["level_labels"]
    tok = agent.get_tokenizer()
    words = [tok.decode(labels[i][labels[i] != -100]) for i in range(2)]
    assert words == [" bad fair excellent", " good poor bad"]
    with torch.no_grad():
        out = agent(**{k: v for k, v in enc.items() if k != "scores"})
        ref = agent.backbone(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                             pixel_values=enc["pixel_values"], image_grid_thw=enc["image_grid_thw"],
                             mm_token_type_ids=(enc["input_ids"] == agent.config.vlm_config.image_token_id).int(),
                             labels=labels)
    assert float(out.loss) == pytest.approx(float(ref.loss), rel=1e-4)
    # the Q-Align read-out: softmax over the five words' first tokens at each slot, dotted with 0..100
    first = [tok(" " + w, add_special_tokens=False)["input_ids"][0] for w in LEVELS]
    logits = ref.logits[torch.arange(2)[:, None], enc["level_slots"]][..., first].softmax(-1)
    want = (logits * torch.tensor([0, 25.0, 50, 75, 100])).sum(-1)
    torch.testing.assert_close(out.level_scores, want, atol=1e-4, rtol=1e-4)


def test_eq8_in_forward_uses_the_returned_scores(agent):
    src, ed = _images(4), _images(4, seed=2)
    mos = np.array([[90.0, 20.0, 55.0], [10.0, 80.0, 40.0], [50.0, 50.0, 95.0], [70.0, 65.0, 5.0]])
    with torch.no_grad():
        out = agent(**agent.encode(src, ed, "edit", scores=mos))
    p = out.scores.double().numpy() / 100
    t = mos / 100
    want = sum(np.mean((p[:, d] - t[:, d]) ** 2) + 1 - stats.pearsonr(p[:, d], t[:, d]).statistic for d in range(3)
               if np.std(p[:, d]) >= 0.02)
    want += sum(np.mean((p[:, d] - t[:, d]) ** 2) + 1 - np.cov(p[:, d], t[:, d], bias=True)[0, 1] / (0.02 * np.std(t[:, d]))
                for d in range(3) if np.std(p[:, d]) < 0.02)
    assert float(out.loss) == pytest.approx(want, rel=1e-4)


def test_lora_split_and_backbone_modes(agent):
    trainable = {n for n, p in agent.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith("head.") for n in trainable)
    assert any(n.startswith("head.") for n in trainable) and any("lora_" in n for n in trainable)
    assert not any("lm_head" in n or "visual" in n for n in trainable)
    full = EvaluationAgent(EvaluationAgentConfig(vlm_config=agent.config.vlm_config.to_dict(), image_size=64,
                                                 head_dims=(16,), head_dropout=(0.0,), backbone_training="full"))
    assert all(p.requires_grad for p in full.parameters())
    frozen = EvaluationAgent(EvaluationAgentConfig(vlm_config=agent.config.vlm_config.to_dict(), image_size=64,
                                                   head_dims=(16,), head_dropout=(0.0,), backbone_training="frozen"))
    assert {n.split(".")[0] for n, p in frozen.named_parameters() if p.requires_grad} == {"head"}


@pytest.mark.parametrize("kw, match", [
    (dict(image_size=50), "multiple of 32"),
    (dict(head_dims=(8, 8), head_dropout=(0.1,)), "one positive width"),
    (dict(backbone_training="partial"), "backbone_training"),
    (dict(levels=("low", "mid", "high")), "levels must be"),
    (dict(plcc_memory=-1), "plcc_memory"),
])
def test_bad_configs_are_named(agent, kw, match):
    with pytest.raises(ValueError, match=match):
        EvaluationAgentConfig(vlm_config=agent.config.vlm_config.to_dict(), **kw)


def test_bad_inputs_are_named(agent):
    src = _images(2)
    with pytest.raises(ValueError, match="sources: got 1 source images for 2"):
        agent.score(src[:1], src, "x")
    with pytest.raises(ValueError, match="instructions: got 3 for 2"):
        agent.score(src, src, ["a", "b", "c"])
    with pytest.raises(ValueError, match="special token '<|image_pad|>'"):
        agent.score(src, src, ["a <|image_pad|>", "b"])
    with pytest.raises(ValueError, match=r"edited\[1\]: 4 channels"):
        agent.score(src, [src[0], torch.rand(4, 64, 64)], "x")
    with pytest.raises(ValueError, match=r"scores: expected shape \(2, 3\)"):
        agent.encode(src, src, "x", scores=np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"\[0, 100\]"):
        agent.encode(src, src, "x", scores=np.full((2, 3), 120.0), with_levels=True)
    with pytest.raises(ValueError, match="readouts"):
        agent.predict(src, src, "x", readouts=("logits",))
    enc = agent.encode(src, src, "x")
    ids = enc["input_ids"]
    ids[0, (ids[0] == agent.config.vlm_config.image_token_id).nonzero()[0]] = 0  # one image token fewer
    with pytest.raises(ValueError, match="image tokens of its source and edited image"):
        agent(**enc)
