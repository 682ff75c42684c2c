"""Follow one reward call from a policy completion to trl's reward list and count the hops between rooms.

    python scripts/trace_reward_call.py

The call: ``RetouchEnvReward`` (one environment step) with format + SSIM similarity + parameter accuracy
on the completion ``exposure=+0.9``, as trl makes it. ``sys.settrace`` records every Python call into an
rlkit module; a *file hop* is a call that changes module file, a *room hop* one that changes room
(``rlkit.<room>``); as in the count the layering issue quoted, a return to the caller followed by another
call from it counts as a hop.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from rlkit.envs import RetouchEnvReward
from rlkit.rewards import FormatReward, ImageSimilarityReward, ParameterAccuracyReward, WeightedSum

ROOT = Path(__file__).resolve().parents[1] / "rlkit"


def _room(filename: str) -> tuple[str, str] | None:
    path = Path(filename)
    try:
        rel = path.resolve().relative_to(ROOT)
    except ValueError:
        return None
    return (rel.parts[0] if len(rel.parts) > 1 else "(top)"), str(rel)


def trace_one_call() -> tuple[list[str], list[str]]:
    """(files, rooms) entered by one reward call, in call order (consecutive repeats merged)."""
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(20, 230, (64, 64, 3), dtype=np.uint8))
    reward = WeightedSum([FormatReward("program", fmt="retouchiq"), ImageSimilarityReward("ssim"),
                          ParameterAccuracyReward("program")], name="trace")
    func = RetouchEnvReward(reward, image_size=64, fmt="retouchiq", name="trace")

    def trl_kwargs() -> dict:  # fresh lists each step, as trl passes them (the bridge caches by identity)
        return dict(prompts=[[{"role": "user", "content": "Brighten."}]],
                    completions=[[{"role": "assistant", "content": "Too dark. {exposure=+0.9}"}]],
                    completion_ids=[[1, 2, 3]], image=[photo], target_image=[photo],
                    program=['{"exposure": 1.0}'], instruction=["Brighten."], log_metric=lambda k, v: None)

    func(**trl_kwargs())  # warm-up: imports and caches do not count
    kwargs = trl_kwargs()
    files: list[str] = []

    def tracer(frame, event, arg):  # noqa: ANN001 - sys.settrace's signature
        if event == "call":
            where = _room(frame.f_code.co_filename)
            if where is not None and (not files or files[-1] != where[1]):
                files.append(where[1])
        return None

    sys.settrace(tracer)
    try:
        func(**kwargs)
    finally:
        sys.settrace(None)
    rooms: list[str] = []
    for f in files:
        room = f.split("/")[0] if "/" in f else "(top)"
        if not rooms or rooms[-1] != room:
            rooms.append(room)
    return files, rooms


def main() -> None:
    files, rooms = trace_one_call()
    print(f"file-to-file hops: {len(files) - 1} over {len(set(files))} files")
    print(f"room-level hops:   {len(rooms) - 1}: {' -> '.join(rooms)}")
    for f in dict.fromkeys(files):
        print(f"  {f}")


if __name__ == "__main__":
    main()
