"""A completion is parsed once and its edit rendered once per trl step, however many rewards read it, on both
paths to trl: the plain bridge (rewards render on the dataset's photos) and the environment executor."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from PIL import Image

import rlkit.ops as ops
from rlkit.envs import RetouchEnvReward
from rlkit.rewards import (
    FormatReward,
    ImageImprovementReward,
    ImageSimilarityReward,
    ParameterAccuracyReward,
    WeightedSum,
    to_trl_reward_funcs,
)

TEXTS = ["Too dark.\n{exposure=+0.5}", "{contrast=+20; saturation=-10}", "garbage", '{"Exposure2012": -0.3}']


def _counting(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Count every call of the parser on a completion and every image the engine renders, wherever rlkit
    imported the functions from (each module's own reference is replaced)."""
    seen: dict[str, list[str]] = {"parse": [], "render": []}
    real_parse, real_apply = ops.parse_program, ops.apply_program

    def parse(text, *args, **kwargs):
        if text in TEXTS:
            seen["parse"].append(text)
        return real_parse(text, *args, **kwargs)

    def apply(images, *args, **kwargs):
        seen["render"] += ["image"] * int(images.shape[0])
        return real_apply(images, *args, **kwargs)

    for name, module in list(sys.modules.items()):
        if name.startswith("rlkit") and module is not None:
            if getattr(module, "parse_program", None) is real_parse:
                monkeypatch.setattr(module, "parse_program", parse)
            if getattr(module, "apply_program", None) is real_apply:
                monkeypatch.setattr(module, "apply_program", apply)
    return seen


def _reward() -> WeightedSum:
    return WeightedSum([FormatReward("program", fmt="auto"), ImageSimilarityReward("l1"),
                        ImageImprovementReward("l1"), ParameterAccuracyReward("program")], name="many")


def _columns(n: int) -> dict[str, list[object]]:
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(20, 230, (24, 32, 3), dtype=np.uint8))
    target = Image.fromarray(rng.integers(20, 230, (24, 32, 3), dtype=np.uint8))
    return {"image": [photo] * n, "target_image": [target] * n,
            "program": [json.dumps({"exposure": 0.5})] * n, "instruction": ["brighten"] * n}


def test_plain_bridge_parses_and_renders_each_completion_once(monkeypatch):
    seen = _counting(monkeypatch)
    funcs, _ = to_trl_reward_funcs(_reward())
    assert len(funcs) == 4
    kwargs = dict(prompts=[None] * len(TEXTS), completions=list(TEXTS), **_columns(len(TEXTS)))
    scores = [f(**kwargs) for f in funcs]
    assert sorted(seen["parse"]) == sorted(TEXTS)  # one parse per completion, for four rewards
    assert len(seen["render"]) == 3  # the three valid programs, one render each ("garbage" has none)
    assert scores[0] == [1.0, 1.0, 0.0, 1.0]


def test_environment_path_parses_and_renders_each_completion_once(monkeypatch):
    seen = _counting(monkeypatch)
    env_reward = RetouchEnvReward(_reward(), image_size=(24, 32))
    out = env_reward(prompts=[None] * len(TEXTS), completions=list(TEXTS), **_columns(len(TEXTS)))
    assert sorted(seen["parse"]) == sorted(TEXTS)
    assert len(seen["render"]) == 3
    assert out[2] == 0.0 and all(v > 0.5 for i, v in enumerate(out) if i != 2)
