"""GRM supervised fine-tuning (RetouchIQ Eq. 3) with trl's SFTTrainer, and the GRM's pair accuracy.

The GRM sees the instruction, the source image and the two edits in the pair's recorded order (strong at
``strong_position``), and learns to write the annotated metrics and both scores (``rewards/grm/prompt.py``
format). Prompts are built with the same :class:`~rlkit.rewards.GRMTemplate` the reward uses at inference,
so the trained model is asked exactly what it learnt. With ``pointwise_rows`` each pair also yields two
one-image rows (source + strong -> its score, source + weak -> its score), so the GRM can also score a single
edit, which is how the policy's GRPO uses it (Eq. 2, ``GenerativeRewardModel(mode="pointwise")``).

Any Qwen-VL-family checkpoint works (full fine-tuning, or LoRA through ``peft_config``); trl does the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from datasets import Dataset
from trl import SFTConfig

from rlkit.rewards import DEFAULT_TEMPLATE, GRMBackend, GRMTemplate, format_grm_answer, parse_grm_output
from rlkit.train.stages import train_sft

__all__ = ["GRMSFTConfig", "grm_prompt", "grm_sft_rows", "grm_rl_rows", "pair_accuracy", "train_grm_sft"]


@dataclass
class GRMSFTConfig(SFTConfig):
    """trl's ``SFTConfig`` for the GRM: no truncation by default (a cut would drop image tokens or the
    scores), and the GRM-specific row options."""

    max_length: int | None = field(
        default=None, metadata={"help": "Maximum tokens per row (None: no truncation; images must not be cut)."})
    pointwise_rows: bool = field(
        default=True, metadata={"help": "Also train one-image rows (source + one edit -> its score), the form "
                                        "the policy's GRPO reward asks in."})
    both_orders: bool = field(
        default=True, metadata={"help": "Show each pair in both orders (the strong edit's position is then "
                                        "independent of the text)."})


def grm_prompt(instruction: str, source: Any, shown: Sequence[Any], template: GRMTemplate = DEFAULT_TEMPLATE
               ) -> tuple[list[dict[str, Any]], list[Any]]:
    """The GRM chat prompt with ``{"type": "image"}`` placeholders (as trl's datasets hold them) and the
    images in placeholder order: source first, then ``shown``."""
    messages = template.messages(instruction, source, list(shown))
    images: list[Any] = []
    out = []
    for m in messages:
        content = []
        for block in m["content"]:
            if block.get("type") == "image":
                images.append(block["image"])
                content.append({"type": "image"})
            else:
                content.append({"type": "text", "text": block["text"]})
        out.append({"role": m["role"], "content": content})
    return out, images


def _shown(row: dict[str, Any], position: int | None = None) -> tuple[list[Any], int]:
    pos = int(row["strong_position"]) if position is None else position
    if pos not in (1, 2):
        raise ValueError(f"pair {row.get('id')!r}: strong_position must be 1 or 2, got {pos}")
    return ([row["strong"], row["weak"]] if pos == 1 else [row["weak"], row["strong"]]), pos


def _answer(text: str) -> list[dict[str, Any]]:
    return [{"role": "assistant", "content": [{"type": "text", "text": text}]}]


def grm_sft_rows(pairs: Any, *, template: GRMTemplate = DEFAULT_TEMPLATE, pointwise: bool = True,
                 both_orders: bool = True) -> list[dict[str, Any]]:
    """trl prompt-completion rows (``prompt``, ``completion``, ``images``) from annotated pairs: the pair in
    its recorded order (scores in the shown order), with ``both_orders`` also in the other order, and with
    ``pointwise`` one row per edit. Unannotated pairs raise.

    Showing both orders makes the strong edit's position independent of the text (instruction, metrics):
    a model can only learn which image is stronger from the pixels, not memorise an order per instruction.
    """
    rows = []
    for row in pairs:
        if not row.get("metrics") or row.get("score_strong") is None or row.get("score_weak") is None:
            raise ValueError(f"pair {row.get('id')!r} is not annotated (metrics and both scores are needed for "
                             "SFT); build it with an annotator")
        s, w = float(row["score_strong"]), float(row["score_weak"])
        recorded = int(row["strong_position"])
        for pos in ((recorded, 3 - recorded) if both_orders else (recorded,)):
            shown, _ = _shown(row, pos)
            prompt, images = grm_prompt(row["instruction"], row["source"], shown, template)
            scores = [s, w] if pos == 1 else [w, s]
            rows.append({"prompt": prompt, "completion": _answer(format_grm_answer(row["metrics"], scores)),
                         "images": images})
        if pointwise:
            for img, score in ((row["strong"], s), (row["weak"], w)):
                prompt, images = grm_prompt(row["instruction"], row["source"], [img], template)
                rows.append({"prompt": prompt, "completion": _answer(format_grm_answer(row["metrics"], [score])),
                             "images": images})
    return rows


def grm_rl_rows(pairs: Any, *, template: GRMTemplate = DEFAULT_TEMPLATE) -> list[dict[str, Any]]:
    """GRPO rows for the GRM (Eq. 4): the pair prompt in its recorded order, the images, ``strong_position``
    (read by the ranking reward) and the pair's ``weak_kind``."""
    rows = []
    for row in pairs:
        shown, pos = _shown(row)
        prompt, images = grm_prompt(row["instruction"], row["source"], shown, template)
        rows.append({"prompt": prompt, "images": images, "strong_position": pos,
                     "weak_kind": row.get("weak_kind") or "perturbed"})
    return rows


def pair_accuracy(backend: GRMBackend, pairs: Any, *, template: GRMTemplate = DEFAULT_TEMPLATE,
                  mode: str = "pair", both_orders: bool = True) -> dict[str, Any]:
    """How often the GRM scores the strong edit strictly above the weak one (RetouchIQ Fig. 5's accuracy).

    ``mode="pair"``: one request shows both edits (the PGRT prompt); with ``both_orders`` each pair is asked
    in both orders, so a judge that always prefers one position scores exactly 0.5. ``mode="pointwise"``: each
    edit is scored alone (the prompt the policy's reward uses, Eq. 2) and the two scores are compared. Ties
    and unparseable answers count as wrong (``parsed`` and ``ties`` say how many). Returns ``{"accuracy",
    "parsed", "ties", "answers", "pairs", "first_failure"}``.
    """
    if mode not in ("pair", "pointwise"):
        raise ValueError(f"pair_accuracy: mode={mode!r}; expected 'pair' or 'pointwise'")
    plan, reqs = [], []
    for row in pairs:
        if mode == "pointwise":
            for img in (row["strong"], row["weak"]):
                reqs.append(template.messages(row["instruction"], row["source"], [img]))
            plan.append(None)
            continue
        for pos in ((1, 2) if both_orders else (int(row["strong_position"]),)):
            shown, _ = _shown(row, pos)
            reqs.append(template.messages(row["instruction"], row["source"], shown))
            plan.append(pos)
    if not reqs:
        return {"accuracy": None, "parsed": None, "ties": None, "answers": 0, "pairs": 0, "first_failure": None}
    replies = backend.generate(reqs)
    n_img = 1 if mode == "pointwise" else 2
    parses = [parse_grm_output(r.text, n_img) if r.text is not None else None for r in replies]
    first_failure = next((r.error if p is None else p.reason for r, p in zip(replies, parses)
                          if p is None or not p.ok), None)
    correct = parsed = ties = 0
    for k, pos in enumerate(plan):
        if mode == "pointwise":
            a, b = parses[2 * k], parses[2 * k + 1]
            if a is None or b is None or not (a.ok and b.ok):
                continue
            strong, weak = a.scores[0], b.scores[0]  # type: ignore[index]
        else:
            p = parses[k]
            if p is None or not p.ok:
                continue
            strong, weak = (p.scores[0], p.scores[1]) if pos == 1 else (p.scores[1], p.scores[0])  # type: ignore[index]
        parsed += 1
        correct += strong > weak
        ties += strong == weak
    n = len(plan)
    return {"accuracy": correct / n, "parsed": parsed / n, "ties": ties / n, "answers": len(reqs),
            "pairs": n if mode == "pointwise" else n // (2 if both_orders else 1), "first_failure": first_failure}


def train_grm_sft(model: Any, pairs: Any, args: SFTConfig, *, processing_class: Any = None,
                  peft_config: Any = None, template: GRMTemplate = DEFAULT_TEMPLATE, pointwise: bool | None = None,
                  callbacks: Sequence[Any] | None = None, resume_from_checkpoint: str | bool | None = None,
                  save_dir: str | None = None) -> Any:
    """GRM SFT (Eq. 3): ``model`` (path or loaded VLM) on annotated ``pairs`` with trl's SFTTrainer through
    :func:`rlkit.train.train_sft` (resume, DeepSpeed, LoRA as there). Returns the trainer."""
    if pointwise is None:
        pointwise = bool(getattr(args, "pointwise_rows", True))
    rows = grm_sft_rows(pairs, template=template, pointwise=pointwise,
                        both_orders=bool(getattr(args, "both_orders", True)))
    if not rows:
        raise ValueError("train_grm_sft: no annotated pairs to train on")
    return train_sft(model, Dataset.from_list(rows), args, processing_class=processing_class,
                     peft_config=peft_config, callbacks=callbacks, resume_from_checkpoint=resume_from_checkpoint,
                     save_dir=save_dir)
