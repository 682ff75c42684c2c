"""RetouchIQ's alternating training: GRM SFT, then rounds of policy GRPO (the GRM as reward) -> policy edits ->
GRM policy-guided reward training (PGRT, Eq. 4); optionally RetouchIQ Fig. 5. Resumable: relaunch the same
command after a kill and the run continues from its manifest (``<output_dir>/manifest.json``).

    accelerate launch --config_file recipes/accelerate_configs/zero2.yaml recipes/pgrt.py \\
        --config recipes/pgrt/config_qwen2.5-vl-7b.yaml

Every field of the YAML is also a CLI flag (``--rounds 3``). See docs/pgrt.md.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from trl import GRPOConfig, TrlParser

    from rlkit.testing import resolve_model_name  # entry points turn tiny:<kind> names into local folders
    from rlkit.train.config import RecipeModelConfig
    from rlkit.train.pgrt import PGRTArguments
    from rlkit.train.pgrt_run import run_pgrt
    from rlkit.train.stages import finish_run, is_main_process

    parser = TrlParser((PGRTArguments, GRPOConfig, RecipeModelConfig))
    script_args, grpo_args, model_args = parser.parse_args_and_config(args=argv)
    model_args.model_name_or_path = resolve_model_name(model_args.model_name_or_path)
    for name in ("grm_model_name_or_path", "judge_model_name_or_path"):
        if getattr(script_args, name):
            setattr(script_args, name, resolve_model_name(getattr(script_args, name)))
    manifest = run_pgrt(script_args, grpo_args, model_args)
    if is_main_process():
        done = sum(st["status"] == "done" for st in manifest["stages"])
        print(f"rlkit pgrt done: {done}/{len(manifest['stages'])} stages; manifest in "
              f"{grpo_args.output_dir}/manifest.json")
    return finish_run(None)


if __name__ == "__main__":
    sys.exit(main())
