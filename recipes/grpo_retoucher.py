"""RetouchIQ policy: SFT on (image, instruction -> reasoning + edit program), then GRPO in RetouchEnv.

    accelerate launch --config_file recipes/accelerate_configs/zero2.yaml recipes/grpo_retoucher.py \\
        --config recipes/retoucher/config_qwen2.5-vl-7b.yaml

Every field of the YAML is also a CLI flag (``--learning_rate 1e-6``); ``--stages sft`` / ``--stages grpo``
runs one stage (``--sft_model_path`` points GRPO at an earlier SFT output). See docs/recipes.md.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from rlkit.train.config import RetoucherArguments, parse_recipe_args
    from rlkit.train.recipes import run_retoucher
    from rlkit.train.stages import finish_run, is_main_process

    script_args, grpo_args, model_args = parse_recipe_args(RetoucherArguments, argv)
    out = run_retoucher(script_args, grpo_args, model_args)
    if is_main_process():
        steps = ", ".join(f"{k}={out[k]}" for k in ("sft_global_step", "grpo_global_step") if k in out)
        print(f"rlkit retoucher recipe done: stages {out['stages']} ({steps}); output in {grpo_args.output_dir}")
    return finish_run(out.get("trainer"))  # clean exit of every rank (see its docstring)


if __name__ == "__main__":
    sys.exit(main())
