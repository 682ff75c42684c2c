"""Evaluation agent (EditRefiner Sec. 4.5): train the Qwen-VL backbone + MLP head in the paper's two stages with
``transformers.Trainer`` -- stage 1 cross-entropy on the five level words, stage 2 Eq. 8 (MSE + 1 - PLCC) on the
head -- on EditFHF rows.

    accelerate launch --config_file recipes/accelerate_configs/zero2.yaml recipes/train_evaluator.py \\
        --config recipes/evaluator/config_qwen3-vl-8b.yaml

Stage 1 writes ``<output_dir>/levels``, stage 2 (starting from it) ``<output_dir>``. Every YAML field is also a
CLI flag (``--stages scores`` runs stage 2 only); ``--resume_from_checkpoint true`` resumes the first stage run.
See docs/agents.md.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from trl import TrlParser

    from rlkit.testing import resolve_model_name  # an entry point: tiny:<kind> names in configs
    from rlkit.train.evaluator import EvaluatorConfig, EvaluatorScriptArguments, run_evaluator_stages
    from rlkit.train.stages import finish_run, init_distributed_for_deepspeed, is_main_process

    parser = TrlParser((EvaluatorScriptArguments, EvaluatorConfig))
    script, args = parser.parse_args_and_config(argv)
    for name in ("model_name_or_path", "backbone_name_or_path"):
        if getattr(script, name):
            setattr(script, name, resolve_model_name(getattr(script, name)))
    init_distributed_for_deepspeed()
    results = run_evaluator_stages(script, args)
    last = results[results["stages"][-1]]
    if is_main_process():
        print(f"rlkit evaluator recipe done: stages {', '.join(results['stages'])} on {results['train_rows']} rows; "
              f"saved to {args.output_dir}")
    return finish_run(last.trainer)


if __name__ == "__main__":
    sys.exit(main())
