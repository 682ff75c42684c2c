"""RetouchEnvReward: completions executed as environment steps, scored against hand-computed references."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from rlkit.envs import RetouchEnvReward, env_rows_from_trl
from rlkit.rewards import retouchiq_policy_reward

SIZE = 32


def _photo(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(30, 220, (SIZE, SIZE, 3), dtype=np.uint8))


def _exposure_reference(src: Image.Image, ev: float) -> np.ndarray:
    """Independent exposure: sRGB -> linear (IEC 61966-2-1), x 2**ev, clip, -> sRGB, in numpy."""
    x = np.asarray(src, dtype=np.float64) / 255.0
    lin = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    lin = np.clip(lin * 2.0 ** ev, 0.0, 1.0)
    return np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)


@pytest.fixture(scope="module")
def reward_fn():
    return RetouchEnvReward(retouchiq_policy_reward(fmt="retouchiq", rule_metric="l1"), image_size=SIZE,
                            fmt="retouchiq")


def test_reward_is_format_plus_one_minus_l1_to_the_target(reward_fn):
    src, target = _photo(0), _photo(0)
    # target = the photo itself: an exposure edit of +0.5 EV scores 1 + (1 - mean|exposed - photo|)
    rewards, batch = reward_fn.score(["Too dark.\n{exposure=+0.5}"], [{"image": src, "target_image": target}])
    expected_l1 = np.abs(_exposure_reference(src, 0.5) - np.asarray(target, dtype=np.float64) / 255).mean()
    assert rewards[0] == pytest.approx(1.0 + (1.0 - expected_l1), abs=5e-3)
    assert batch.rollouts[0].is_valid


def test_malformed_and_hostile_completions_score_zero_and_are_never_executed(reward_fn, tmp_path):
    marker = tmp_path / "pwned"
    src = _photo(1)
    texts = [
        "garbage",
        f"__import__('os').system('touch {marker}')",
        "{exposure=+99}",               # out of range: a parse problem, not a clamp
        "{exposure=+1.0}",
        "",
    ]
    rows = [{"image": src, "target_image": src}] * len(texts)
    rewards, batch = reward_fn.score(texts, rows)
    assert not marker.exists()
    assert rewards[0] == rewards[1] == rewards[2] == rewards[4] == 0.0
    assert rewards[3] > 1.0                       # valid program: format 1 + similarity
    assert [r.is_valid for r in batch.rollouts] == [False, False, False, True, False]
    assert "outside the allowed range" in batch.rollouts[2].problems[0].reason, "the out-of-range value is reported"


def test_results_come_back_in_the_callers_order(reward_fn):
    """Valid and invalid completions interleaved: each reward belongs to its own row."""
    rows = [{"image": _photo(i), "target_image": _photo(i)} for i in range(4)]
    texts = ["nope", "{exposure=+0.0}", "still nope", "{exposure=-3.0}"]
    rewards, batch = reward_fn.score(texts, rows)
    assert rewards[0] == 0.0 and rewards[2] == 0.0
    assert rewards[1] == pytest.approx(2.0, abs=1e-3)      # identity edit on target == source
    assert 1.0 < rewards[3] < rewards[1]
    assert [r.is_valid for r in batch.rollouts] == [False, True, False, True]


def test_trl_call_signature_logs_components(reward_fn):
    src = _photo(2)
    logged: dict[str, float] = {}
    out = reward_fn(prompts=[[{"role": "user", "content": "x"}]] * 2,
                    completions=[[{"role": "assistant", "content": "{exposure=+0.0}"}],
                                 [{"role": "assistant", "content": "bad"}]],
                    completion_ids=[[1], [2]], image=[src, src], target_image=[src, src],
                    instruction=["a", "b"], trainer_state=None,
                    log_metric=lambda k, v: logged.__setitem__(k, v))
    assert out[0] == pytest.approx(2.0, abs=1e-3) and out[1] == 0.0
    name = reward_fn.__name__
    assert logged[f"rewards/{name}/valid_fraction"] == 0.5
    assert logged[f"rewards/{name}/format"] == 0.5            # mean over both: the malformed one scores 0


def test_rows_need_an_image_column():
    with pytest.raises(ValueError, match="needs an 'image' column .*'instruction'"):
        env_rows_from_trl(2, {"instruction": ["a", "b"], "log_metric": None})
