"""RetouchEnv / VectorRetouchEnv: Gymnasium contract, engine execution, rewards, malformed actions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

from rlkit.envs import EnvConfigError, RetouchEnv, VectorRetouchEnv
from rlkit.envs._images import load_image, resize
from rlkit.ops import EditProgram, apply_program, parse_program
from rlkit.rewards import FunctionReward, RewardResult

SIZE = (48, 64)


def _src(name="coffee"):
    return resize(load_image(name), SIZE)


def _target(src, **params):
    return apply_program(src[None], EditProgram.from_dict(params))[0]


def _l1_similarity(batch):
    """Hand-written reference reward: 1 - mean |output - target| over pixels and channels (numpy)."""
    out = []
    for o, t in zip(batch.column("output_image"), batch.column("target_image")):
        out.append(1.0 - float(np.abs(o.numpy().astype(np.float64) - t.numpy().astype(np.float64)).mean()))
    return RewardResult(out, components={"l1_sim": list(out)})


L1 = FunctionReward(_l1_similarity, name="l1_sim")


def _rows():
    rows = []
    for name, ev in [("coffee", 0.7), ("chelsea", -0.5), ("astronaut", 0.3)]:
        src = _src(name)
        rows.append(
            {
                "image": src,
                "target_image": _target(src, exposure=ev),
                "instruction": f"fix {name}",
                "difficulty": ev,
            }
        )
    return rows


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"max_steps": 3, "reward_mode": "delta", "include_source": True},
        {"reward_mode": "step", "render_mode": "rgb_array"},
    ],
)
def test_check_env_passes(kwargs):
    env = RetouchEnv(_rows(), reward=L1, image_size=SIZE, **kwargs)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=3)
    assert env.observation_space.contains(obs)


def test_step_executes_the_program_with_the_engine_and_scores_it():
    rows = _rows()
    env = RetouchEnv(rows, reward=L1, image_size=SIZE)
    obs, info = env.reset(options={"index": 0})
    assert info["row_index"] == 0 and obs["instruction"] == "fix coffee"
    text = "Too dark, lift it. {exposure=+0.4; contrast=10}"
    obs, reward, terminated, truncated, info = env.step(text)
    expected = apply_program(rows[0]["image"][None], parse_program(text).program)[0]
    assert torch.allclose(env.current_image, expected, atol=1e-6)
    ref = 1.0 - np.abs(expected.numpy().astype(np.float64) - rows[0]["target_image"].numpy()).mean()
    assert reward == pytest.approx(ref, abs=1e-6)
    assert info["reward_components"]["l1_sim"] == pytest.approx(ref, abs=1e-6)
    assert info["program_dict"] == {"exposure": 0.4, "contrast": 10.0} and info["valid"]
    assert terminated and not truncated and info["budget_exhausted"] and not info["finished"]
    np.testing.assert_array_equal(
        obs["image"], (expected.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    )
    # the exact edit the instruction asks for gets the maximal reward
    env.reset(options={"index": 0})
    assert env.step(EditProgram.from_dict({"exposure": 0.7}))[1] == pytest.approx(1.0, abs=1e-6)
    env.reset(options={"index": 0})
    assert env.step({"Exposure2012": 0.7})[1] == pytest.approx(1.0, abs=1e-6)  # Lightroom key dict


def test_reward_sees_extra_columns_and_instruction():
    seen = {}

    def spy(batch):
        seen.update(instr=batch.instructions, diff=batch.column("difficulty"), text=batch.completions)
        return [0.5] * len(batch)

    env = RetouchEnv(_rows(), reward=FunctionReward(spy, name="spy"), image_size=SIZE)
    env.reset(options={"index": 1})
    env.step("exposure=-0.5")
    assert seen == {"instr": ["fix chelsea"], "diff": [-0.5], "text": ["exposure=-0.5"]}


@pytest.mark.parametrize(
    "action",
    [
        "__import__('os').system('touch /tmp/rlkit_pwned')",
        "exposure=eval('1')",
        '<answer>{"Exposure2012": </answer>',
        "",
        "exposure=+99",  # out of range
        12345,
        {"Exposure2012": "os.system('x')"},
    ],
)
def test_malformed_actions_are_zero_reward_and_never_executed(action, tmp_path):
    env = RetouchEnv(_rows(), reward=L1, image_size=SIZE, max_steps=2)
    env.reset(options={"index": 0})
    before = env.current_image.clone()
    obs, reward, terminated, truncated, info = env.step(action)
    assert reward == 0.0 and not info["valid"] and info["program"] is None
    assert info["parse_problems"] and all(p["reason"] for p in info["parse_problems"])
    assert torch.equal(env.current_image, before)
    assert not terminated and not truncated  # the episode continues ...
    assert not __import__("os").path.exists("/tmp/rlkit_pwned")
    obs, reward, terminated, _, info = env.step("exposure=+0.7")  # ... and a valid action still works
    assert terminated and reward == pytest.approx(1.0, abs=1e-6)


def test_malformed_last_action_ends_with_invalid_reward():
    env = RetouchEnv(_rows(), reward=L1, image_size=SIZE, max_steps=1, invalid_reward=-1.0)
    env.reset(options={"index": 0})
    _, reward, terminated, _, info = env.step("nonsense")
    assert terminated and reward == -1.0 and not info["valid"]
    with pytest.raises(EnvConfigError, match="after the episode ended"):
        env.step("exposure=+0.1")


def test_finish_token_and_final_reward_mode():
    env = RetouchEnv(_rows(), reward=L1, image_size=SIZE, max_steps=4)
    env.reset(options={"index": 0})
    _, r1, t1, _, _ = env.step("exposure=+0.3")
    assert r1 == 0.0 and not t1  # final mode: nothing until the end
    _, r2, t2, _, info = env.step("exposure=+0.4 <finish>")
    assert t2 and info["finished"] and info["valid"]
    expected = apply_program(
        apply_program(_rows()[0]["image"][None], EditProgram.from_dict({"exposure": 0.3})),
        EditProgram.from_dict({"exposure": 0.4}),
    )[0]
    assert torch.allclose(env.current_image, expected, atol=1e-6)
    ref = 1.0 - np.abs(expected.numpy().astype(np.float64) - _rows()[0]["target_image"].numpy()).mean()
    assert r2 == pytest.approx(ref, abs=1e-6)
    assert [p.to_dict() for p in env.applied_programs] == [{"exposure": 0.3}, {"exposure": 0.4}]
    env.reset(options={"index": 0})
    _, r, t, _, info = env.step("<think>already good</think><finish>")
    assert t and info["valid"] and info["program"] is None
    ref0 = (
        1.0
        - np.abs(_rows()[0]["image"].numpy().astype(np.float64) - _rows()[0]["target_image"].numpy()).mean()
    )
    assert r == pytest.approx(ref0, abs=1e-6)


def test_delta_rewards_sum_to_total_improvement():
    rows = _rows()
    env = RetouchEnv(rows, reward=L1, image_size=SIZE, max_steps=3, reward_mode="delta")
    _, info = env.reset(options={"index": 0})
    initial = info["score"]
    total = sum(env.step(a)[1] for a in ["exposure=+0.2", "garbage", "exposure=+0.5"])
    final = (
        1.0 - np.abs(env.current_image.numpy().astype(np.float64) - rows[0]["target_image"].numpy()).mean()
    )
    assert total == pytest.approx(final - initial, abs=1e-6)


def test_reset_rows_seeds_and_errors():
    rows = _rows()
    env = RetouchEnv(rows, image_size=SIZE)
    picks = [env.reset(seed=s)[1]["row_index"] for s in range(8)]
    assert picks == [env.reset(seed=s)[1]["row_index"] for s in range(8)]
    obs, info = env.reset(options={"row": {"photo": "rocket", "instruction": "bluer sky"}})
    assert info["row_index"] is None and obs["image"].shape == (48, 64, 3)
    with pytest.raises(EnvConfigError, match="no 'image'"):
        env.reset(options={"row": {"instruction": "x"}})
    with pytest.raises(EnvConfigError, match="out of range"):
        env.reset(options={"index": 3})
    with pytest.raises(EnvConfigError, match="neither an existing file nor a bundled photo"):
        env.reset(options={"row": {"image": "no_such_photo"}})
    with pytest.raises(EnvConfigError, match="options={'row'"):
        RetouchEnv(image_size=SIZE).reset()
    with pytest.raises(EnvConfigError, match="reward_mode"):
        RetouchEnv(rows, reward_mode="sum")
    with pytest.raises(EnvConfigError, match="reset"):
        RetouchEnv(rows).step("exposure=+1")


def test_non_ascii_instruction_stays_inside_the_text_space():
    env = RetouchEnv([{"image": _src(), "instruction": "Mach es wärmer ☀ – bitte"}], image_size=SIZE)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs) and obs["instruction"].startswith("Mach es wärmer ? ")


def test_vector_env_matches_single_envs_with_one_engine_call(monkeypatch):
    rows = _rows()
    import rlkit.envs.core

    calls = []
    real = rlkit.envs.core.apply_program

    def counting(images, programs, **kw):
        calls.append(images.shape[0])
        return real(images, programs, **kw)

    monkeypatch.setattr(rlkit.envs.core, "apply_program", counting)
    venv = VectorRetouchEnv(3, rows, reward=L1, image_size=SIZE)
    obs, infos = venv.reset(options={"rows": rows})
    assert obs["image"].shape == (3, 48, 64, 3) and obs["instruction"] == (
        "fix coffee",
        "fix chelsea",
        "fix astronaut",
    )
    actions = ["exposure=+0.7", "garbage", EditProgram.from_dict({"exposure": 0.1})]
    obs, rewards, term, trunc, infos = venv.step(actions)
    assert calls == [2]  # one batched engine call for the two valid actions
    for i, row in enumerate(rows):
        env = RetouchEnv([row], reward=L1, image_size=SIZE)
        env.reset(options={"index": 0})
        _, r, t, _, info = env.step(actions[i])
        assert (
            rewards[i] == pytest.approx(r, abs=1e-6) and term[i] == t and infos["valid"][i] == info["valid"]
        )
        np.testing.assert_array_equal(
            obs["image"][i],
            env.render()
            if env.render_mode
            else (env.current_image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8),
        )
    assert rewards[0] == pytest.approx(1.0, abs=1e-6) and rewards[1] == 0.0
    assert infos["_reward_components"].tolist() == [True, True, True]
    # NEXT_STEP autoreset: the next step resets every finished env, ignores its action, reward 0
    obs, rewards, term, trunc, infos = venv.step(["exposure=+5"] * 3)
    assert rewards.tolist() == [0.0, 0.0, 0.0] and not term.any()
    assert set(infos) >= {"row_index", "_row_index"}
    assert venv.single_observation_space.contains({k: v[0] for k, v in obs.items()})


_FUZZ_ENV = None


def _fuzz_env():
    global _FUZZ_ENV
    if _FUZZ_ENV is None:
        _FUZZ_ENV = RetouchEnv([{"image": _src(), "instruction": "x"}], image_size=(16, 16), max_steps=1000)
        _FUZZ_ENV.reset(seed=0)
    return _FUZZ_ENV


_PIECES = st.sampled_from(
    [
        "exposure",
        "=",
        "+",
        "-",
        "0.5",
        "1e9",
        "nan",
        ";",
        "{",
        "}",
        "<think>",
        "</think>",
        "<answer>",
        "</answer>",
        '"Exposure2012"',
        ":",
        ",",
        "<finish>",
        "contrast",
        " ",
        "\n",
        "__import__",
        "(",
        ")",
        "'",
    ]
)


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.text(max_size=80), st.lists(_PIECES, max_size=14).map("".join)))
def test_any_text_action_is_handled_without_raising(text):
    env = _fuzz_env()
    if env.episode.done:
        env.reset(seed=0)
    before = env.current_image.clone()
    obs, reward, terminated, truncated, info = env.step(text)
    assert env.observation_space.contains(obs)
    if not info["valid"]:
        assert reward == 0.0 and torch.equal(env.current_image, before)
        assert info["parse_problems"] or info["execution_error"]
    else:
        assert info["program"] is not None or info["finished"]
    assert np.isfinite(reward)
    assert terminated == info["finished"]


def test_vector_env_batches_infos_when_an_invalid_action_comes_first():
    """gymnasium merges per-env infos by type: an invalid step must not break a later valid one's info."""
    rows = _rows()[:2]
    venv = VectorRetouchEnv(2, rows, reward=L1, image_size=SIZE)
    venv.reset(options={"rows": rows})
    _, rewards, _, _, infos = venv.step(["garbage", "{exposure=+1.0}"])
    assert rewards[0] == 0.0 and rewards[1] > 0.0
    assert list(infos["valid"]) == [False, True]
    assert infos["program_dict"]["exposure"][1] == 1.0
    assert not infos["program_dict"]["_exposure"][0]  # nothing was applied in env 0
