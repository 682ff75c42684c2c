"""Perception agent: train a saliency net (Agentic Retoucher's text net or EditRefiner's VLM net) with
``transformers.Trainer`` on GenBlemish / EditFHF rows.

    accelerate launch --config_file recipes/accelerate_configs/zero2.yaml recipes/train_saliency.py \\
        --config recipes/saliency/config_qwen3-vl-8b.yaml

Every field of the YAML is also a CLI flag (``--learning_rate 1e-5``); ``--resume_from_checkpoint true``
continues from the last ``checkpoint-*`` in ``output_dir``. See docs/perception.md.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from trl import TrlParser

    from rlkit.train.saliency import (
        SaliencyConfig,
        SaliencyScriptArguments,
        build_saliency_model,
        saliency_datasets,
        train_saliency,
    )
    from rlkit.train.stages import finish_run, init_distributed_for_deepspeed, is_main_process

    parser = TrlParser((SaliencyScriptArguments, SaliencyConfig))
    script, args = parser.parse_args_and_config(argv)
    if script.model_name_or_path:  # "tiny:saliency_text" / "tiny:saliency_vlm": the tiny nets (tests, CI, docs)
        from rlkit.testing import resolve_model_name

        script.model_name_or_path = resolve_model_name(script.model_name_or_path)
    init_distributed_for_deepspeed()
    model = build_saliency_model(script)
    train, test = saliency_datasets(script)
    use_eval = str(args.eval_strategy) not in ("no", "IntervalStrategy.NO") and test is not None
    result = train_saliency(model, train, args, eval_dataset=test if use_eval else None,
                            resume_from_checkpoint=args.resume_from_checkpoint)
    if is_main_process():
        print(f"rlkit saliency recipe done: {type(model).__name__} ({', '.join(model.map_names)}), "
              f"{result.trainer.state.global_step} steps; saved to {args.output_dir}")
    return finish_run(result.trainer)


if __name__ == "__main__":
    sys.exit(main())
