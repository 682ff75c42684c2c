"""Seconds per GRPO step of the tiny VLM: rlkit's env-executed reward vs plain trl with a constant reward.

    python benchmarks/grpo_step.py --policy rlkit-quickstart/grpo [--steps 40] [--repeats 20] [--batch 8]

The two are interleaved inside the same GRPOTrainer run: each step, a seeded coin picks whether the
completions are scored with ``RetouchEnvReward`` (every completion executed in the retouching environment, scored by
``retouchiq_policy_reward``: format + L1 to the expert image) or with trl's constant baseline (1.0).
Same model, image prompts, batch, completion length and seed, and ``learning_rate = 0`` so that the policy
never changes. Comparing steps of one run removes the drift between runs (run medians of the same
configuration vary by 5-15% on a shared 2-core machine, more than the effect measured); each repeat is a
fresh run, and the result is the ratio of the median step times with a bootstrap 90% interval over steps.
The time spent inside the reward call is also measured directly on every rlkit step. ``--control-spin S``
checks the design: a busy wait of S seconds in place of the reward must come out as S / step time.

An untrained tiny policy writes no parseable program, so the engine never runs; for a realistic reward
path pass a trained one, e.g. the quickstart's: ``--policy rlkit-quickstart/grpo``.

Before the GRPO runs, the reward call itself is taken apart on 8 real completions at 64x64 (best of many
repeats, in this process): the whole ``RetouchEnvReward`` call against its two unavoidable parts run
alone, the engine render of the same programs and the reward's own arithmetic on a ready batch; the rest
is rlkit's plumbing (rows, parsing, batch building), reported as a share of a trl step.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time


def _step_times(trainer_cls, model_path, processor, reward_funcs, dataset, args) -> list[float]:
    """Wall time of every optimizer step of one GRPOTrainer run (generation, reward, loss, update)."""
    from transformers import TrainerCallback

    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, a, state, control, **kw):
            self.t = time.perf_counter()

        def on_step_end(self, a, state, control, **kw):
            times.append(time.perf_counter() - self.t)

    trainer = trainer_cls(model=model_path, reward_funcs=reward_funcs, args=args, train_dataset=dataset,
                          processing_class=processor, callbacks=[Timer()])
    trainer.train()
    return times


def ratio_interval(ours: list[float], base: list[float], *, draws: int = 2000, seed: int = 0
                   ) -> tuple[float, float, float]:
    """median(ours) / median(base) and its bootstrap 90% interval (steps resampled with replacement)."""
    rng = random.Random(seed)
    boot = sorted(statistics.median(rng.choices(ours, k=len(ours))) / statistics.median(rng.choices(base, k=len(base)))
                  for _ in range(draws))
    return statistics.median(ours) / statistics.median(base), boot[int(0.05 * draws)], boot[int(0.95 * draws)]


def _best(fn, repeats: int = 50) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def reward_call_parts(env_reward, rows, texts) -> dict[str, float]:
    """Seconds of the whole env reward call and of its engine render and reward arithmetic run alone."""
    import torch

    from rlkit.ops import apply_program

    kwargs = {k: [r[k] for r in rows] for k in rows[0]}
    # a new completions list each call: the bridge reuses its batch while trl passes the same list object
    whole = _best(lambda: env_reward(prompts=[None] * len(texts), completions=list(texts), **kwargs))
    batch = env_reward.last_batch
    programs = [r.program for r in batch.rollouts]
    sources = torch.stack([s for s in batch.source_images])
    valid = [i for i, p in enumerate(programs) if p is not None]
    render = _best(lambda: apply_program(sources[valid], [programs[i] for i in valid])) if valid else 0.0
    score = _best(lambda: env_reward.reward(batch))
    return {"whole": whole, "render": render, "score": score, "plumbing": whole - render - score,
            "valid": len(valid) / len(texts)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=40, help="GRPO steps per run, each rlkit or baseline by a "
                                                        "seeded coin (the first 2 are warm-up)")
    ap.add_argument("--repeats", type=int, default=20, help="runs (each a fresh GRPOTrainer; 20 take ~2 min and "
                                                          "give a +-1.5%% interval)")
    ap.add_argument("--batch", type=int, default=8, help="completions per step")
    ap.add_argument("--generations", type=int, default=4, help="completions per prompt")
    ap.add_argument("--max-completion-length", type=int, default=24)
    ap.add_argument("--control-spin", type=float, default=0.0, metavar="SECONDS",
                    help="control run: the 'rlkit' steps busy-wait this long instead of calling the reward, so the "
                         "overhead must come out as SECONDS / step time (checks the design for bias)")
    ap.add_argument("--policy", default="tiny:qwen2_5_vl",
                    help="policy folder; a trained one (e.g. rlkit-quickstart/grpo) writes valid programs, so the "
                         "engine really runs (default: the random tiny model, whose text rarely parses)")
    opts = ap.parse_args()

    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from rlkit.policies import load_processing_class
    from rlkit.rewards import retouchiq_policy_reward
    from rlkit.testing import resolve_model_name as resolve_model_path
    from rlkit.train import RetouchEnvReward, build_quickstart_rows, retoucher_rows
    from rlkit.train.progress import quiet_third_party

    quiet_third_party()

    model_path = resolve_model_path(opts.policy)
    processor = load_processing_class(model_path)
    rows = build_quickstart_rows(("astronaut", "coffee"), 4, image_size=64, seed=0)
    dataset = Dataset.from_list(retoucher_rows(rows, stage="grpo"))
    env_reward = RetouchEnvReward(retouchiq_policy_reward(), image_size=64, fmt="retouchiq", name="retouchiq")

    texts = ["It is too dark.\n{exposure=+0.8}", "{exposure=+1.0; contrast=+10}", "It looks cold.\n{temperature=+40}",
             "{temperature=-35}", "It is too bright.\n{exposure=-0.7}", "{saturation=+20}", "It is too dark.\n{exposure=",
             "{vibrance=+15; exposure=+0.3}"]
    parts = reward_call_parts(env_reward, [{k: r[k] for k in ("image", "target_image", "instruction")}
                                           for r in rows[:len(texts)]], texts)
    print(f"reward call on {len(texts)} completions at 64x64 (best of 50): whole {1e3 * parts['whole']:.2f} ms = "
          f"engine render {1e3 * parts['render']:.2f} + reward arithmetic {1e3 * parts['score']:.2f} + rlkit "
          f"plumbing {1e3 * parts['plumbing']:.2f} ms")

    spin = opts.control_spin
    kinds: list[str] = []  # per reward call (one per step): which reward scored that step
    reward_seconds: list[float] = []
    valid = [0, 0]

    assign = random.Random(1)

    def interleaved(*a, **kw):
        """Each step, by a seeded coin: rlkit's env reward (timed) or trl's constant baseline. (A fixed
        alternation would tie each kind to the same places in trl's per-epoch prompt order: +2% bias.)"""
        if assign.random() < 0.5:
            kinds.append("trl")
            return [1.0] * len(kw["completions"])
        kinds.append("rlkit")
        t = time.perf_counter()
        if spin:  # control: a busy wait as long as the reward call, in place of it
            while time.perf_counter() - t < spin:
                pass
            reward_seconds.append(time.perf_counter() - t)
            return [1.0] * len(kw["completions"])
        out = env_reward(*a, **kw)
        reward_seconds.append(time.perf_counter() - t)
        rollouts = env_reward.last_batch.rollouts
        valid[0] += sum(r.is_valid for r in rollouts)
        valid[1] += len(rollouts)
        return out

    interleaved.__name__ = "retouchiq"
    args = GRPOConfig(output_dir="/tmp/rlkit-bench-grpo", max_steps=opts.steps, learning_rate=0.0,
                      per_device_train_batch_size=opts.batch, num_generations=opts.generations,
                      max_completion_length=opts.max_completion_length, use_cpu=not torch.cuda.is_available(),
                      bf16=False, report_to="none", save_strategy="no", logging_steps=1000, seed=0,
                      disable_tqdm=True)
    steps: dict[str, list[float]] = {"trl": [], "rlkit": []}
    for r in range(opts.repeats):
        kinds.clear()
        assign.seed(r)
        times = _step_times(GRPOTrainer, model_path, processor, [interleaved], dataset, args)
        if len(kinds) != len(times) or len(set(kinds[2:])) < 2:
            raise SystemExit(f"expected one reward call per step and both kinds, got {len(kinds)} calls for "
                             f"{len(times)} steps ({sorted(set(kinds))})")
        run = {"trl": [], "rlkit": []}
        for kind, t in list(zip(kinds, times))[2:]:
            run[kind].append(t)
            steps[kind].append(t)
        ratio = statistics.median(run["rlkit"]) / statistics.median(run["trl"])
        print(f"  run {r + 1}: trl + constant {statistics.median(run['trl']):.4f} s/step, "
              f"{'spin' if spin else 'rlkit env'} {statistics.median(run['rlkit']):.4f} s/step, ratio {ratio:.3f} ({len(run['trl'])} + "
              f"{len(run['rlkit'])} steps)")
    base = statistics.median(steps["trl"])
    ours = statistics.median(steps["rlkit"])
    ratio, lo, hi = ratio_interval(steps["rlkit"], steps["trl"])
    rew = statistics.median(reward_seconds) if reward_seconds else float("nan")
    print(f"\nGRPO step, tiny Qwen2.5-VL, {opts.batch} completions of <= {opts.max_completion_length} tokens, "
          f"64x64 images, {torch.get_num_threads()} threads, steps interleaved in {opts.repeats} runs")
    print(f"  trl + constant reward        {base:.4f} s/step  ({len(steps['trl'])} steps)")
    label = f"control: spin {1e3 * spin:.2f} ms" if spin else "rlkit env + RetouchIQ reward"
    detail = "" if spin else f"; valid programs {100 * valid[0] / max(1, valid[1]):.0f}%"
    print(f"  {label:<28} {ours:.4f} s/step  ({len(steps['rlkit'])} steps{detail})")
    print(f"  ratio rlkit / trl            {ratio:.3f}   overhead {100 * (ratio - 1):+.1f}% "
          f"(90% interval {100 * (lo - 1):+.1f}% .. {100 * (hi - 1):+.1f}%; target <= +3%)")
    what = "the spin itself" if spin else "the env reward call itself"
    print(f"  {what:<28} {1e3 * rew:.2f} ms = {100 * rew / base:.1f}% of a trl step (measured on every rlkit step)")
    print(f"  rlkit plumbing in the reward call: {1e3 * parts['plumbing']:.2f} ms = "
          f"{100 * parts['plumbing'] / base:.2f}% of a trl step")


if __name__ == "__main__":
    main()
