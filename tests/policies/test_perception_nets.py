"""The two saliency nets: save/load round trip, Auto classes, device/dtype, predict_maps protocol, bad input,
LoRA/trainable split, the edited image's tokens as features, and the loss computed from the returned maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import AutoConfig, AutoModel

from rlkit.metrics import kld as metric_kld
from rlkit.policies import (
    TextSaliencyConfig,
    TextSaliencyNet,
    VLMSaliencyConfig,
    VLMSaliencyNet,
    load_saliency_net,
)
from rlkit.testing import tiny_model_path


@pytest.fixture(scope="module")
def text_dir():
    return tiny_model_path("saliency_text")


@pytest.fixture(scope="module")
def vlm_dir():
    return tiny_model_path("saliency_vlm")


@pytest.fixture(scope="module")
def text_net(text_dir):
    return load_saliency_net(text_dir)


@pytest.fixture(scope="module")
def vlm_net(vlm_dir):
    return load_saliency_net(vlm_dir)


def _rand_images(n, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(3, h, w, generator=g) for _ in range(n)]


def test_auto_classes_and_round_trip(text_net, vlm_net, tmp_path):
    assert isinstance(AutoConfig.from_pretrained(tiny_model_path("saliency_text")), TextSaliencyConfig)
    assert isinstance(AutoConfig.from_pretrained(tiny_model_path("saliency_vlm")), VLMSaliencyConfig)
    imgs = _rand_images(2, 64, 64)
    for net, kw in ((text_net, {"prompts": ["a cat", "a dog on grass"]}),
                    (vlm_net, {"sources": _rand_images(2, 64, 64, 1), "instructions": ["warm it up", ""]})):
        out = tmp_path / type(net).__name__
        net.save_pretrained(out)
        assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
        back = AutoModel.from_pretrained(out)
        assert type(back) is type(net) and back.map_names == net.map_names
        a, b = net.predict_maps(imgs, **kw), back.predict_maps(imgs, **kw)
        for name in net.map_names:
            np.testing.assert_array_equal(a[name], b[name])
    assert text_net.map_names == ("saliency",) and vlm_net.map_names == ("artifact", "failure")


def test_predict_maps_protocol(text_net, vlm_net):
    imgs = [Image.new("RGB", (80, 48), (200, 30, 30)), *_rand_images(1, 48, 80)]
    out = text_net.predict_maps(imgs, prompts="a red card")
    assert set(out) == {"saliency"} and out["saliency"].shape == (2, 48, 80)
    assert out["saliency"].dtype == np.float32 and 0 <= out["saliency"].min() <= out["saliency"].max() <= 1
    mixed = text_net.predict_maps([imgs[0], torch.rand(3, 30, 20)])  # no prompt: documented, allowed
    assert isinstance(mixed["saliency"], list) and [m.shape for m in mixed["saliency"]] == [(48, 80), (30, 20)]
    v = vlm_net.predict_maps(imgs, sources=imgs[::-1], instructions="Brighten the image.")
    assert set(v) == {"artifact", "failure"} and all(m.shape == (2, 48, 80) for m in v.values())


def test_greyscale_and_rgba_are_documented_conversions(text_net):
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    grey = rgb.convert("L")
    rgba = rgb.convert("RGBA")
    maps = text_net.predict_maps([rgb, rgba, grey, grey.convert("RGB")], prompts="x")["saliency"]
    np.testing.assert_array_equal(maps[0], maps[1])  # alpha dropped
    np.testing.assert_array_equal(maps[2], maps[3])  # grey replicated to three channels


@pytest.mark.parametrize(
    "images, match",
    [
        ([torch.rand(4, 32, 32)], r"images\[0\]: 4 channels"),
        ([torch.full((3, 32, 32), float("nan"))], r"images\[0\]: contains NaN"),
        ([torch.rand(3, 32, 32), torch.rand(3, 4, 32)], r"images\[1\]: image of 32x4 pixels is too small"),
        ([torch.rand(3, 32, 32) * 3], r"must be in \[0, 1\]"),
        ([np.zeros((32, 32, 2), np.uint8)], "1 or 3 channels"),
        (["photo.png"], "expected a PIL image"),
        ([], "no images"),
    ],
)
def test_bad_images_are_named(text_net, images, match):
    with pytest.raises((ValueError, TypeError), match=match):
        text_net.predict_maps(images)


def test_bad_text_inputs_are_named(text_net, vlm_net):
    imgs = _rand_images(2, 32, 32)
    with pytest.raises(ValueError, match="2 images"):
        text_net.predict_maps(imgs, prompts=["only one"])
    with pytest.raises(ValueError, match="sources/instructions are for"):
        text_net.predict_maps(imgs, sources=imgs)
    with pytest.raises(ValueError, match="needs sources"):
        vlm_net.predict_maps(imgs, instructions="x")
    with pytest.raises(ValueError, match="needs instructions"):
        vlm_net.predict_maps(imgs, sources=imgs)
    with pytest.raises(ValueError, match="1 source images for 2"):
        vlm_net.predict_maps(imgs, sources=imgs[:1], instructions="x")
    with pytest.raises(ValueError, match=r"instructions\[1\] contains the special token '<\|image_pad\|>'"):
        vlm_net.predict_maps(imgs, sources=imgs, instructions=["ok", "sneak <|image_pad|> in"])
    with pytest.raises(ValueError, match="prompts are for TextSaliencyNet"):
        vlm_net.predict_maps(imgs, sources=imgs, instructions="x", prompts="y")
    with pytest.raises(ValueError, match="pixel_values must be"):
        text_net(pixel_values=torch.rand(1, 3, 32, 32), input_ids=torch.ones(1, 3, dtype=torch.long))


def test_dtype_and_device_are_passed(text_dir, vlm_dir):
    imgs = _rand_images(2, 40, 40)
    for d, kw in ((text_dir, {"prompts": "p"}), (vlm_dir, {"sources": imgs, "instructions": "x"})):
        net = load_saliency_net(d, dtype=torch.bfloat16, device="cpu")
        assert next(net.parameters()).dtype == torch.bfloat16 and net.device.type == "cpu"
        out = net.predict_maps(imgs, **kw)
        full = load_saliency_net(d).predict_maps(imgs, **kw)
        for k, v in out.items():
            assert v.dtype == np.float32 and np.abs(v - full[k]).mean() < 0.05  # bf16 close to fp32


def test_text_net_loss_is_eq2_on_the_returned_probabilities(text_net):
    net = text_net
    enc = net.encode_prompts(["a", "b"])
    px = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    labels = torch.stack([torch.exp(-((xx - 20) ** 2 + (yy - 30) ** 2) / 50), torch.zeros(64, 64)])[:, None]
    net.eval()
    with torch.no_grad():
        out = net(pixel_values=px, labels=labels, **enc)
    p = out.saliency.numpy()[:, 0].astype(np.float64)
    g = labels.numpy()[:, 0]
    a = net.config.loss_alpha
    want = a * np.mean((p - g) ** 2) + (1 - a) * metric_kld(p[:1], g[:1])[0]  # empty map 2: no KLD
    assert float(out.loss) == pytest.approx(want, rel=1e-4)
    assert torch.allclose(out.saliency, torch.sigmoid(out.logits))


def test_vlm_loss_is_eq6_on_the_returned_probabilities_and_reads_the_edited_tokens(vlm_net):
    net = vlm_net
    s = net.config.image_size
    imgs, srcs = _rand_images(2, s, s, 4), _rand_images(2, s, s, 5)
    enc = net.encode(imgs, srcs, ["Warm it up.", "Darken the image."])
    enc.pop("sizes")
    labels = torch.zeros(2, 2, s, s)
    labels[0, 0, 10:30, 40:60] = 0.8
    labels[1, 1, 70:90, 5:25] = 1.0
    seen = {}
    hook = net.fusion.register_forward_hook(lambda m, args, out: seen.setdefault("grid", args[0]))
    net.eval()
    try:
        with torch.no_grad():
            out = net(**enc, labels=labels)
            hs = net.backbone(**{k: v for k, v in enc.items()}, output_hidden_states=True,
                              mm_token_type_ids=(enc["input_ids"] == net.config.vlm_config.image_token_id).int())
    finally:
        hook.remove()
    # the decoder's grid = layer-`feature_layer` states at the second image's tokens, row-major
    feats = hs.hidden_states[net.config.feature_layer]
    g = net.config.grid_size
    for i in range(2):
        pos = (enc["input_ids"][i] == net.config.vlm_config.image_token_id).nonzero()[:, 0]
        assert len(pos) == 2 * g * g
        ref = feats[i, pos[g * g:]].T.reshape(-1, g, g)
        torch.testing.assert_close(seen["grid"][i], ref)
    p = out.saliency.double()
    t = labels.double()
    w = net.config.loss_weights()
    kld = [metric_kld(p[i, c].numpy(), t[i, c].numpy())[0] for i in range(2) for c in range(2) if t[i, c].max() > 0]
    want = (w["l1"] * (p - t).abs().mean() + w["bce"] * F.binary_cross_entropy(p, t)
            + w["kld"] * np.mean(kld))  # one non-empty map per channel here: mean over maps = mean over all
    assert float(out.loss) == pytest.approx(float(want), rel=1e-4)


def test_lora_on_the_backbone_decoder_fully_trained(vlm_net, vlm_dir):
    trainable = {n for n, p in vlm_net.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("fusion.", "decoder.")) or ".lora_" in n for n in trainable)
    assert {n for n, _ in vlm_net.decoder.named_parameters(prefix="decoder")} <= trainable
    lora = [n for n in trainable if ".lora_" in n]
    assert lora and all(".language_model." in n for n in lora)
    assert not any("visual" in n for n in trainable)
    cfg = vlm_net.config
    assert cfg.backbone_training == "lora" and cfg.lora_r == 8
    # from_backbone keeps the pretrained backbone weights (LoRA B starts at 0: the adapted model equals it)
    from transformers import AutoModel as AM

    from rlkit.testing import tiny_model_path as tmp

    fresh = VLMSaliencyNet.from_backbone(tmp("qwen3_vl"), image_size=128, lora_r=4, lora_alpha=8,
                                         decoder_dim=32, decoder_heads=4, decoder_channels=[16],
                                         decoder_factors=[2])
    base = AM.from_pretrained(tmp("qwen3_vl")).state_dict()
    for name, v in fresh.backbone.state_dict().items():
        if "lora_" not in name:
            torch.testing.assert_close(v, base[name.replace(".base_layer", "")])
        if "lora_B" in name:
            assert float(v.abs().max()) == 0.0


def test_ablation_switches(text_dir):
    cfg = AutoConfig.from_pretrained(text_dir)
    cfg.use_refinement = False
    cfg.use_kld = False
    net = TextSaliencyNet(cfg)
    assert net.refine is None and cfg.loss_weights() == {"mse": 1.0}
    with pytest.raises(ValueError, match="alpha"):
        TextSaliencyConfig(vision_config=cfg.vision_config.to_dict(), text_config=cfg.text_config.to_dict(),
                           loss_alpha=2.0)
    with pytest.raises(ValueError, match="image_size=100 must be a positive multiple of 32"):
        VLMSaliencyConfig(vlm_config=AutoConfig.from_pretrained(tiny_model_path("qwen3_vl")).to_dict(),
                          image_size=100)
