"""rlkit.policies: the agents' side of the loop: their prompts and output parsers, and model loading.

- prompts: the retoucher (RetouchIQ-style edit programs) and reasoner (flaw diagnoses) chat prompts, and
  trl SFT/GRPO rows built from rlkit records;
- diagnosis: the reasoning agents' answer parser;
- loading: policies and processors from paths, hub ids or LoRA adapters (Qwen-VL without torchvision).
"""

from rlkit.policies.diagnosis import (
    Diagnosis,
    DiagnosisParse,
    DiagnosisProblem,
    normalize_flaw_type,
    parse_diagnosis,
)
from rlkit.policies.loading import (
    PROCESSOR_CLASSES,
    ImageOnlyQwen2_5_VLProcessor,
    ImageOnlyQwen2VLProcessor,
    ImageOnlyQwen3VLProcessor,
    has_torchvision,
    is_adapter_dir,
    load_policy,
    load_processing_class,
    load_processor,
    register_processors,
    resolve_model_path,
)
from rlkit.policies.prompts import (
    REASONER_SYSTEM_PROMPT,
    RETOUCHER_SYSTEM_PROMPT,
    DatasetColumnError,
    reasoner_completion,
    reasoner_prompt,
    reasoner_rows,
    retoucher_completion,
    retoucher_prompt,
    retoucher_rows,
)

__all__ = [
    "Diagnosis", "DiagnosisParse", "DiagnosisProblem", "normalize_flaw_type", "parse_diagnosis",
    "PROCESSOR_CLASSES", "ImageOnlyQwen2VLProcessor", "ImageOnlyQwen2_5_VLProcessor", "ImageOnlyQwen3VLProcessor",
    "has_torchvision", "is_adapter_dir", "load_policy", "load_processing_class", "load_processor",
    "register_processors", "resolve_model_path",
    "RETOUCHER_SYSTEM_PROMPT", "REASONER_SYSTEM_PROMPT", "DatasetColumnError",
    "retoucher_prompt", "retoucher_completion", "retoucher_rows",
    "reasoner_prompt", "reasoner_completion", "reasoner_rows",
]
