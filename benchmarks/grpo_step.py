"""Seconds per GRPO step of the tiny VLM: rlkit's env-executed reward vs plain trl with a constant reward.

    python benchmarks/grpo_step.py [--steps 12] [--repeats 2] [--batch 8] [--generations 4]

Both runs use the same tiny Qwen2.5-VL, the same image prompts, batch, completion length and seed, with
learning_rate = 0 so that both generate exactly the same completions (the comparison is then the reward
path alone, not different text lengths). The rlkit run executes every completion in VectorRetouchEnv and
scores it with ``retouchiq_policy_reward`` (format + L1 to the expert image); the baseline returns 1.0.
Runs alternate (baseline, rlkit, baseline, rlkit, ...) and the median step time of each is compared.

An untrained tiny policy writes no parseable program, so the engine never runs; for a realistic reward
path pass a trained one, e.g. the quickstart's: ``--policy rlkit-quickstart/grpo``.

Before the GRPO runs, the reward call itself is taken apart on 8 real completions at 64x64 (best of many
repeats, in this process): the whole ``RetouchEnvReward`` call against its two unavoidable parts run
alone, the engine render of the same programs and the reward's own arithmetic on a ready batch; the rest
is rlkit's plumbing (rows, parsing, batch building), reported as a share of a trl step.
"""

from __future__ import annotations

import argparse
import statistics
import time


def _step_times(trainer_cls, model_path, processor, reward_funcs, dataset, args):
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
    ap.add_argument("--steps", type=int, default=12, help="GRPO steps per run (the first 2 are warm-up)")
    ap.add_argument("--repeats", type=int, default=2, help="alternating runs of each variant")
    ap.add_argument("--batch", type=int, default=8, help="completions per step")
    ap.add_argument("--generations", type=int, default=4, help="completions per prompt")
    ap.add_argument("--max-completion-length", type=int, default=24)
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
    reward_seconds: list[float] = []

    valid = [0, 0]
    texts = ["It is too dark.\n{exposure=+0.8}", "{exposure=+1.0; contrast=+10}", "It looks cold.\n{temperature=+40}",
             "{temperature=-35}", "It is too bright.\n{exposure=-0.7}", "{saturation=+20}", "It is too dark.\n{exposure=",
             "{vibrance=+15; exposure=+0.3}"]
    parts = reward_call_parts(env_reward, [{k: r[k] for k in ("image", "target_image", "instruction")}
                                           for r in rows[:len(texts)]], texts)
    print(f"reward call on {len(texts)} completions at 64x64 (best of 50): whole {1e3 * parts['whole']:.2f} ms = "
          f"engine render {1e3 * parts['render']:.2f} + reward arithmetic {1e3 * parts['score']:.2f} + rlkit "
          f"plumbing {1e3 * parts['plumbing']:.2f} ms")

    def timed_env_reward(*a, **kw):
        t = time.perf_counter()
        out = env_reward(*a, **kw)
        reward_seconds.append(time.perf_counter() - t)
        rollouts = env_reward.last_batch.rollouts
        valid[0] += sum(r.is_valid for r in rollouts)
        valid[1] += len(rollouts)
        return out

    timed_env_reward.__name__ = "retouchiq"

    def constant(completions, **kw):
        return [1.0] * len(completions)

    args = GRPOConfig(output_dir="/tmp/rlkit-bench-grpo", max_steps=opts.steps, learning_rate=0.0,
                      per_device_train_batch_size=opts.batch, num_generations=opts.generations,
                      max_completion_length=opts.max_completion_length, use_cpu=not torch.cuda.is_available(),
                      bf16=False, report_to="none", save_strategy="no", logging_steps=1000, seed=0,
                      disable_tqdm=True)
    results: dict[str, list[float]] = {"trl + constant reward": [], "rlkit env + RetouchIQ reward": []}
    for r in range(opts.repeats):
        for name, funcs in (("trl + constant reward", [constant]), ("rlkit env + RetouchIQ reward", [timed_env_reward])):
            times = _step_times(GRPOTrainer, model_path, processor, funcs, dataset, args)
            results[name].extend(times[2:])
            print(f"  run {r + 1} {name:30s} median {statistics.median(times[2:]):.4f} s/step")
    base = statistics.median(results["trl + constant reward"])
    ours = statistics.median(results["rlkit env + RetouchIQ reward"])
    rew = statistics.median(reward_seconds) if reward_seconds else float("nan")
    print(f"\nGRPO step, tiny Qwen2.5-VL, {opts.batch} completions of <= {opts.max_completion_length} tokens, "
          f"64x64 images, {torch.get_num_threads()} threads")
    print(f"  trl + constant reward        {base:.4f} s/step")
    print(f"  rlkit env + RetouchIQ reward {ours:.4f} s/step   (of which the env reward call: {rew:.4f} s, "
          f"{100 * rew / base:.1f}% of a trl step; valid programs {100 * valid[0] / max(1, valid[1]):.0f}%)")
    print(f"  ratio rlkit / trl            {ours / base:.3f}   overhead {100 * (ours / base - 1):+.1f}% "
          f"(target <= +3%)")
    print(f"  rlkit plumbing in the reward call: {1e3 * parts['plumbing']:.2f} ms = "
          f"{100 * parts['plumbing'] / base:.2f}% of a trl step")


if __name__ == "__main__":
    main()
