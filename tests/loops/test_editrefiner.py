"""The EditRefiner loop: perception on the current image each turn, keep-the-best stopping rule, the turn
ablation, failures recorded with the input never lost, traces written, and the tiny real agents end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rlkit.loops import EditRefiner, LoopTrace
from rlkit.loops.steps import TurnFailure, apply_tool_call
from rlkit.policies import ActionAgent, ToolCall, ToolSpec

INPAINT = [ToolSpec("paint", "inpaint", 1.0)]


def _loop(d, tool, *, perception=None, reasoner=None, evaluator=None, **kw):
    kw.setdefault("tau", 0.5)
    kw.setdefault("min_area", 1)
    kw.setdefault("opening", 0)  # the square regions stay squares
    kw.setdefault("closing", 0)
    return EditRefiner(perception=perception or d.SpotPerception(), reasoner=reasoner or d.Scripted(),
                       action=ActionAgent(INPAINT), tools={"paint": tool}, evaluator=evaluator or d.RedScore(), **kw)


def test_perception_reads_the_current_image_every_turn(d):
    perception, tool = d.SpotPerception(clean_red=0.95), d.AddRed(0.1)
    trace = _loop(d, tool, perception=perception).run(d.grey(), source=d.grey(v=0.4), instruction="warm it")
    assert [t.status for t in trace.turns] == ["ok", "ok", "ok", "ok"] and trace.stop_turn == 4
    assert len(perception.seen) == 4
    for k, call in enumerate(perception.seen):  # turn k+1 perceives the image turn k produced
        torch.testing.assert_close(call["images"][0], trace.tensors[k])
        torch.testing.assert_close(call["sources"][0], d.grey(v=0.4))
        assert call["instructions"] == ["warm it"]
    red = [float(t[0, 4:12, 4:12].mean()) for t in trace.tensors]
    assert red == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9])


def test_stops_at_the_first_turn_that_does_not_improve_and_keeps_the_best(d):
    tool = d.AddRed(0.2, -0.3, 0.4)
    trace = _loop(d, tool).run(d.grey(), source=d.grey(), instruction="x")
    assert [t.status for t in trace.turns] == ["ok", "rejected"] and len(tool.calls) == 2
    o = trace.overalls
    assert o[1] > o[0] and o[2] < o[1] and trace.stop_turn == 1
    torch.testing.assert_close(trace.best_image, trace.tensors[1])
    assert "turn 2: no improvement" in trace.stop_reason and "does not improve" in trace.turns[1].reason
    # an equal score is no improvement either (the paper: stop when the score does not improve)
    flat = _loop(d, d.AddRed(0.0)).run(d.grey(), source=d.grey(), instruction="x")
    assert [t.status for t in flat.turns] == ["rejected"] and flat.stop_turn == 0


def test_turn_ablation_runs_every_turn_and_reports_the_rule_s_choice(d):
    trace = _loop(d, d.AddRed(0.2, -0.3, 0.4), run_all_turns=True).run(d.grey(), source=d.grey(), instruction="x")
    assert len(trace.turns) == 4 and all(t.status == "ok" for t in trace.turns)
    assert trace.stop_turn == 1  # what the stopping rule would return, though later turns scored higher
    assert max(trace.overalls) > trace.overalls[1]


def test_max_turns_and_a_clean_image(d):
    trace = _loop(d, d.AddRed(0.01), max_turns=2).run(d.grey(), source=d.grey(), instruction="x")
    assert len(trace.turns) == 2 and trace.stop_reason == "reached max_turns=2"
    clean = _loop(d, d.AddRed(0.1)).run(d.grey(v=0.95), source=d.grey(), instruction="x")
    assert clean.turns == [] and clean.stop_turn == 0 and "no region" in clean.stop_reason
    assert set(clean.final_maps) == {"artifact", "failure"}


@pytest.mark.parametrize("setup, reason", [
    (dict(reasoner=("no json here",)), "the reasoning answer for the artifact regions does not parse"),
    (dict(reasoner=('[{"flaw_type": 3}]',)), "'flaw_type' must be a non-empty string"),
    (dict(tool="raise"), "the tool 'paint' failed: RuntimeError: CUDA out of memory"),
    (dict(tool="size"), "returned an image of shape (3, 16, 16), expected (3, 32, 32)"),
    (dict(tool="nan"), "NaN or infinite"),
    (dict(tool="pil"), "returned Image, not a (3, H, W) tensor"),
    (dict(perception="boom"), "perception failed: RuntimeError: boom"),
    (dict(budget=0.5), "no tool is allowed and affordable"),
])
def test_faults_are_failed_turns_and_the_input_is_kept(d, setup, reason):
    from PIL import Image

    tools = {"raise": lambda *a, **k: (_ for _ in ()).throw(RuntimeError("CUDA out of memory")),
             "size": lambda im, *a, **k: torch.zeros(3, 16, 16), "nan": lambda im, *a, **k: im * float("nan"),
             "pil": lambda im, *a, **k: Image.new("RGB", (32, 32))}
    tool = tools.get(setup.get("tool"), d.AddRed(0.1))
    perception = d.SpotPerception(fail=setup.get("perception"))
    reasoner = d.Scripted(*setup["reasoner"]) if "reasoner" in setup else None
    image = d.grey()
    trace = _loop(d, tool, perception=perception, reasoner=reasoner, budget=setup.get("budget")).run(
        image, source=d.grey(), instruction="x")
    (turn,) = trace.turns
    assert turn.status == "failed" and reason in turn.reason and turn.image is None
    assert trace.stop_turn == 0 and torch.equal(trace.best_image, image) and len(trace.images) == 2
    assert trace.scores[1] == trace.scores[0]  # a failed turn keeps the image (and score) it started from


def test_apply_tool_call_names_an_unknown_tool(d):
    call = ToolCall("dall-e", "edit", "fix it", np.ones((8, 8), bool))
    with pytest.raises(TurnFailure, match="unknown tool 'dall-e'; tools: \\['paint'\\]"):
        apply_tool_call(call, {"paint": d.AddRed(0.1)}, d.grey(8, 8), source=None, seed=0)


def test_bad_construction_and_input_are_named(d):
    with pytest.raises(ValueError, match=r"tools \['paint'\] have no callable"):
        EditRefiner(perception=d.SpotPerception(), reasoner=d.Scripted(), action=ActionAgent(INPAINT), tools={},
                    evaluator=d.RedScore())
    with pytest.raises(TypeError, match="evaluator needs a score"):
        EditRefiner(perception=d.SpotPerception(), reasoner=d.Scripted(), action=ActionAgent(INPAINT),
                    tools={"paint": d.AddRed(0.1)}, evaluator=object())
    loop = _loop(d, d.AddRed(0.1))
    with pytest.raises(ValueError, match=r"image: tensor values must lie in \[0, 1\], got \[1\.\d*, "):
        loop.run(d.grey() + 1.0)
    with pytest.raises(ValueError, match=r"image: tensor values must be finite"):
        loop.run(d.grey() * float("nan"))
    with pytest.raises(TypeError, match="instruction must be a string"):
        loop.run(d.grey(), instruction=3)


def test_the_trace_is_written_as_json_strip_and_best_image(d, tmp_path):
    trace = _loop(d, d.AddRed(0.2, -0.3)).run(d.grey(), source=d.grey(), instruction="x")
    paths = trace.save(tmp_path / "t")
    data = json.loads(paths["json"].read_text())
    assert data["best_turn"] == 1 and [t["status"] for t in data["turns"]] == ["ok", "rejected"]
    t1 = data["turns"][0]
    assert t1["regions"]["artifact"]["boxes"] == [[4, 4, 12, 12]] and t1["tool_call"]["tool"] == "paint"
    assert t1["diagnosis"]["artifact"][0]["flaw_type"] == "color_inconsistency" and "perception" in t1["timings"]
    assert data["overalls"] == pytest.approx(trace.overalls, abs=1e-5)
    from PIL import Image

    strip = Image.open(paths["strip"])
    assert strip.height > 64 and strip.width >= 3 * 64  # input + two turns, 64 px tall each
    np.testing.assert_array_equal(np.asarray(Image.open(paths["best"])), np.asarray(trace.images[1]))
    for k in range(3):  # the input and each turn's image, the rejected one included
        np.testing.assert_array_equal(np.asarray(Image.open(paths[f"turn_{k}"])), np.asarray(trace.images[k]))
    assert set(np.load(paths["maps"])) == {"turn1_artifact", "turn1_failure", "turn2_artifact", "turn2_failure"}


def test_tiny_real_agents_end_to_end_never_return_a_worse_image():
    """Tiny saliency net, tiny evaluation agent, a reasoner double, the tiny SD-inpaint pipeline: the
    returned image never scores below the input, re-scored independently by the evaluator."""
    from rlkit.data import build_editfhf
    from rlkit.envs import InpaintTool
    from rlkit.policies import EvaluationAgent, load_saliency_net
    from rlkit.testing import tiny_model_path

    class Reasoner:
        def generate(self, requests):
            return ['[{"flaw_type": "missing_edit", "description": "not applied here"}]'] * len(requests)

    rows = build_editfhf(3, 7, size=64)
    torch.manual_seed(0)
    ev = EvaluationAgent.from_backbone(tiny_model_path("qwen3_vl"), image_size=64, head_dims=(16,),
                                       head_dropout=(0.0,), lora_r=4).eval()
    loop = EditRefiner(perception=load_saliency_net(tiny_model_path("saliency_vlm")), reasoner=Reasoner(),
                       action=ActionAgent([ToolSpec("sd", "inpaint", 2.0)]),
                       tools={"sd": InpaintTool.from_pretrained(tiny_model_path("sd_inpaint"), num_inference_steps=2,
                                                                seed=0)},
                       evaluator=ev, tau=0.3, min_area=1)
    for row in rows:
        trace = loop.run(row["edited"], source=row["source"], instruction=row["instruction"])
        assert isinstance(trace, LoopTrace) and trace.turns
        src = torch.from_numpy(np.asarray(row["source"], np.float32) / 255).permute(2, 0, 1)
        before, after = ev.overall([src, src], [trace.tensors[0], trace.best_image], row["instruction"])
        assert after >= before
        assert trace.overalls[trace.stop_turn] == pytest.approx(after, abs=1e-4)
