"""Reasoning suite (Agentic Retoucher Table 4, EditRefiner Table 3): diagnoses against the annotated flaws.

A reasoner answers, per image, a diagnosis text (``[{"flaw_type", "description"}, ...]``, read by
:func:`rlkit.policies.parse_diagnosis`). Predicted flaws are paired with the reference regions by
:func:`rlkit.rewards.match_diagnoses`; per sample: type accuracy (share of reference flaws whose paired
prediction has the same type; unpaired ones count as wrong), and over the paired descriptions ROUGE-L,
METEOR (needs WordNet), Word2Vec cosine (gensim vectors from a path) and sentence-embedding cosine
(all-MiniLM-L6-v2, the papers' "SimCSE"-style column). A metric whose resources are missing is reported as
unavailable, with why.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from rlkit.data import BlemishRecord, EditFHFRecord, open_image
from rlkit.eval.report import Column, markdown_table, summarize, write_results
from rlkit.eval.runner import run_suite
from rlkit.metrics import SentenceSimilarity, Word2VecSimilarity, meteor, normalize_label, rouge_l
from rlkit.policies import Diagnosis, parse_diagnosis
from rlkit.rewards import match_diagnoses

__all__ = ["Reasoner", "ReasoningSample", "ReasoningSuite", "ReferenceReasoner", "MajorityReasoner",
           "samples_from_records", "run_reasoning", "TextMetrics"]


@runtime_checkable
class Reasoner(Protocol):
    """A reasoning agent: ``name`` and ``diagnose(samples) -> texts`` (one diagnosis text per sample)."""

    name: str

    def diagnose(self, samples: Sequence[ReasoningSample]) -> list[str]: ...


@dataclass
class ReasoningSample:
    """An image, its prompt or instruction, and the reference flaws (type, description, box) of its regions."""

    id: str
    image: Image.Image
    reference: list[Diagnosis]
    prompt: str | None = None

    @property
    def boxes(self) -> list[tuple[float, float, float, float]]:
        return [d.bbox for d in self.reference if d.bbox is not None]


def samples_from_records(records: Sequence[BlemishRecord | EditFHFRecord], *, kind: str = "artifact"
                         ) -> list[ReasoningSample]:
    """GenBlemish records (categories + descriptions at disks) or EditFHF records (``kind``: artifact/failure)."""
    out = []
    for k, r in enumerate(records):
        rid = getattr(r, "id", "") or f"sample-{k}"
        if isinstance(r, BlemishRecord):
            ref = [Diagnosis(g.category, g.description, bbox=(g.center[0] - (g.radius or r.radius()),
                                                               g.center[1] - (g.radius or r.radius()),
                                                               g.center[0] + (g.radius or r.radius()),
                                                               g.center[1] + (g.radius or r.radius())))
                   for g in r.regions]
            out.append(ReasoningSample(rid, open_image(r.image), ref, r.prompt))
        elif isinstance(r, EditFHFRecord):
            regs = r.artifact_regions if kind == "artifact" else r.failure_regions
            ref = [Diagnosis(g.flaw_type, g.description, bbox=tuple(g.box)) for g in regs]
            out.append(ReasoningSample(rid, open_image(r.edited), ref, r.instruction))
        else:
            raise TypeError(f"reasoning suite: record {k} is a {type(r).__name__}")
    return out


def _answer(items: Sequence[Diagnosis]) -> str:
    return json.dumps([{"flaw_type": d.flaw_type, "description": d.description,
                        **({"bbox": list(d.bbox)} if d.bbox is not None else {})} for d in items])


class ReferenceReasoner:
    """The reference diagnoses themselves (upper bound: accuracy 1, ROUGE 1)."""

    name = "reference"

    def diagnose(self, samples: Sequence[ReasoningSample]) -> list[str]:
        return [_answer(s.reference) for s in samples]


class MajorityReasoner:
    """Every region gets the most frequent flaw type of ``train`` samples and that type's most frequent
    description (the shortcut a reasoner must beat)."""

    name = "majority"

    def __init__(self, train: Sequence[ReasoningSample]) -> None:
        types = Counter(normalize_label(d.flaw_type) for s in train for d in s.reference)
        if not types:
            raise ValueError("MajorityReasoner: the training samples have no reference flaws")
        self.flaw_type = types.most_common(1)[0][0]
        descs = Counter(d.description for s in train for d in s.reference
                        if normalize_label(d.flaw_type) == self.flaw_type)
        self.description = descs.most_common(1)[0][0]

    def diagnose(self, samples: Sequence[ReasoningSample]) -> list[str]:
        return [_answer([Diagnosis(self.flaw_type, self.description, bbox=d.bbox) for d in s.reference])
                for s in samples]


class TextMetrics:
    """The description metrics with their optional resources; ``unavailable`` says what is missing and why."""

    def __init__(self, *, word2vec: str | Path | None = None,
                 sentence_model: SentenceSimilarity | str | None = "default") -> None:
        self.unavailable: dict[str, str] = {}
        self.w2v = None
        if word2vec is not None:
            self.w2v = Word2VecSimilarity(word2vec)
        else:
            self.unavailable["word2vec"] = "no Word2Vec vectors given (--word2vec PATH: gensim KeyedVectors)"
        self.st = None
        if sentence_model is not None:
            try:
                self.st = SentenceSimilarity() if sentence_model == "default" else sentence_model
                self.st(["a"], ["a"])
            except Exception as exc:  # noqa: BLE001 - optional model: reported as unavailable
                self.st = None
                self.unavailable["sentence"] = f"sentence-embedding model unavailable: {exc}"
        else:
            self.unavailable["sentence"] = "sentence-embedding similarity switched off"
        try:
            meteor(["a b"], ["a b"])
            self.meteor_ok = True
        except Exception as exc:  # noqa: BLE001 - WordNet missing: reported
            self.meteor_ok = False
            self.unavailable["meteor"] = str(exc)

    def __call__(self, pred: Sequence[str], ref: Sequence[str]) -> dict[str, list[float | None]]:
        n = len(pred)
        out: dict[str, list[float | None]] = {"rouge": [float(x) for x in rouge_l(pred, ref)] if n else []}
        out["meteor"] = [float(x) for x in meteor(pred, ref)] if self.meteor_ok and n else [None] * n
        out["word2vec"] = [float(x) for x in self.w2v(pred, ref)] if self.w2v is not None and n else [None] * n
        out["sentence"] = [float(x) for x in self.st(pred, ref)] if self.st is not None and n else [None] * n
        return out


class ReasoningSuite:
    """Per-sample type accuracy and description metrics of a reasoner."""

    name = "reasoning"

    def __init__(self, samples: Sequence[ReasoningSample], metrics: TextMetrics) -> None:
        self.samples, self.metrics = list(samples), metrics

    def sample_ids(self) -> list[str]:
        return [s.id for s in self.samples]

    def evaluate(self, reasoner: Reasoner, indices: Sequence[int]) -> list[dict[str, Any]]:
        batch = [self.samples[i] for i in indices]
        texts = reasoner.diagnose(batch)
        recs = []
        for s, text in zip(batch, texts):
            parsed = parse_diagnosis(text)
            pred = list(parsed.items) if parsed.items else []
            pairs = match_diagnoses(pred, s.reference)
            correct = sum(normalize_label(pred[i].flaw_type) == normalize_label(s.reference[j].flaw_type)
                          for i, j in pairs)
            rec: dict[str, Any] = {"text": text, "parsed": parsed.ok, "n_ref": len(s.reference), "n_pred": len(pred),
                                   "accuracy": correct / len(s.reference) if s.reference else None}
            m = self.metrics([pred[i].description for i, _ in pairs], [s.reference[j].description for _, j in pairs])
            for k, vals in m.items():  # unpaired reference flaws score 0 on the description metrics
                known = [v for v in vals if v is not None]
                rec[k] = (sum(known) / len(s.reference)) if s.reference and len(known) == len(vals) else None
            recs.append(rec)
        return recs


def run_reasoning(samples: Sequence[ReasoningSample], reasoners: Sequence[Reasoner], output_dir: str | Path, *,
                  metrics: TextMetrics | None = None, batch_size: int = 8, resume: bool = True,
                  progress: bool = True) -> list[dict[str, Any]] | None:
    """Run the reasoning suite; results.json and report.md (Table 4 shape)."""
    metrics = metrics or TextMetrics()
    suite = ReasoningSuite(samples, metrics)
    records = run_suite(suite, reasoners, output_dir, batch_size=batch_size, resume=resume, progress=progress)
    if records is None:
        return None
    cols = [Column("accuracy", "Accuracy ↑", True, "{:.2%}"), Column("sentence", "Sentence emb. ↑", True, "{:.4f}"),
            Column("word2vec", "Word2Vec ↑", True, "{:.4f}"), Column("meteor", "METEOR ↑", True, "{:.4f}"),
            Column("rouge", "ROUGE-L ↑", True, "{:.4f}")]
    summary = summarize([{**r, "split": "all"} for r in records], [c.key for c in cols])
    rows = [(s, summary[s]["all"]) for s in summary]
    md = ["# reasoning", "", f"{len(samples)} images."]
    md += [f"- {k}: unavailable ({why})" for k, why in metrics.unavailable.items()]
    md += ["", markdown_table(rows, cols, first="method"), ""]
    out = Path(output_dir)
    write_results(out, "reasoning", records, summary, {"unavailable": metrics.unavailable})
    (out / "report.md").write_text("\n".join(md), encoding="utf-8")
    return records

