"""Reasoning agent of Agentic Retoucher / EditRefiner: SFT with LoRA (r=64, alpha=32) on region diagnoses,
then GRPO from the SFT adapter with the paper's own reward (``paper: agentic_retoucher | editrefiner``).

    accelerate launch --config_file recipes/accelerate_configs/zero3.yaml recipes/grpo_reasoner.py \\
        --config recipes/reasoner/config_qwen2.5-vl-7b.yaml

Every field of the YAML is also a CLI flag; ``--stages sft`` / ``--stages grpo`` runs one stage
(``--sft_model_path`` points GRPO at an earlier SFT adapter). See docs/recipes.md.
"""

import sys

from rlkit.testing import resolve_model_name  # configs may name tiny:<kind> models (built locally)
from rlkit.train.recipes import recipe_main

if __name__ == "__main__":
    sys.exit(recipe_main("reasoner", resolve_name=resolve_model_name))
