"""rlkit.policies: the agents' side of the loop: their prompts and output parsers, model loading, and the
perception agents.

- prompts: the retoucher (RetouchIQ-style edit programs) and reasoner (flaw diagnoses) chat prompts, and
  trl SFT/GRPO rows built from rlkit records;
- diagnosis: the reasoning agents' answer parser;
- loading: policies and processors from paths, hub ids or LoRA adapters (Qwen-VL without torchvision);
- perception: the saliency nets (Agentic Retoucher's text-conditioned net, EditRefiner's VLM net), their
  losses and map -> regions (see :mod:`rlkit.policies.perception`); importing this package registers the nets
  with ``AutoConfig``/``AutoModel``;
- evaluation: EditRefiner's evaluation agent (:mod:`rlkit.policies.evaluation`, registered the same way);
- action: diagnosis + mask -> repair tool call (:mod:`rlkit.policies.action`); EditRefiner's reasoner prompts
  and rows on EditFHF (:mod:`rlkit.policies.editrefiner_prompts`).
"""

from rlkit.policies.action import (
    TOOL_KINDS,
    ActionAgent,
    ActionConstraints,
    ActionError,
    ToolCall,
    ToolSpec,
    parse_action_answer,
    rule_text,
)
from rlkit.policies.diagnosis import (
    Diagnosis,
    DiagnosisParse,
    DiagnosisProblem,
    normalize_flaw_type,
    parse_diagnosis,
)
from rlkit.policies.editrefiner_prompts import (
    EDITREFINER_REASONER_SYSTEM_PROMPT,
    FLAW_KINDS,
    editrefiner_reasoner_prompt,
    editrefiner_reasoner_rows,
    editrefiner_reference,
)
from rlkit.policies.evaluation import (
    LEVELS,
    EvaluationAgent,
    EvaluationAgentConfig,
    EvaluationOutput,
    level_of,
    score_loss,
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
from rlkit.policies.perception import (
    LOSS_TERMS,
    SALIENCY_MODEL_TYPES,
    MapRegions,
    MaskError,
    SaliencyOutput,
    TextSaliencyConfig,
    TextSaliencyNet,
    VLMSaliencyConfig,
    VLMSaliencyNet,
    boxes_from_mask,
    default_dilation,
    dilate_mask,
    disk_footprint,
    eq2_weights,
    eq6_weights,
    kld_loss,
    load_saliency_net,
    masks_from_saliency,
    open_close,
    regions_from_map,
    regions_from_maps,
    saliency_as_map,
    saliency_loss,
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
    "MapRegions", "MaskError", "boxes_from_mask", "default_dilation", "dilate_mask", "disk_footprint",
    "masks_from_saliency", "open_close", "regions_from_map", "regions_from_maps", "saliency_as_map",
    "TextSaliencyConfig", "TextSaliencyNet", "VLMSaliencyConfig", "VLMSaliencyNet", "SaliencyOutput",
    "load_saliency_net", "SALIENCY_MODEL_TYPES",
    "saliency_loss", "kld_loss", "eq2_weights", "eq6_weights", "LOSS_TERMS",
    "EvaluationAgentConfig", "EvaluationAgent", "EvaluationOutput", "LEVELS", "level_of", "score_loss",
    "TOOL_KINDS", "ActionAgent", "ActionConstraints", "ActionError", "ToolCall", "ToolSpec", "parse_action_answer",
    "rule_text",
    "EDITREFINER_REASONER_SYSTEM_PROMPT", "FLAW_KINDS", "editrefiner_reasoner_prompt", "editrefiner_reasoner_rows",
    "editrefiner_reference",
]

