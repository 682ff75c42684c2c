"""RetouchIQ policy: SFT on (image, instruction -> reasoning + edit program), then GRPO in RetouchEnv.

    accelerate launch --config_file recipes/accelerate_configs/zero2.yaml recipes/grpo_retoucher.py \\
        --config recipes/retoucher/config_qwen2.5-vl-7b.yaml

Every field of the YAML is also a CLI flag (``--learning_rate 1e-6``); ``--stages sft`` / ``--stages grpo``
runs one stage (``--sft_model_path`` points GRPO at an earlier SFT output). See docs/recipes.md.
"""

import sys

from rlkit.testing import resolve_model_name  # configs may name tiny:<kind> models (built locally)
from rlkit.train.recipes import recipe_main

if __name__ == "__main__":
    sys.exit(recipe_main("retoucher", resolve_name=resolve_model_name))
