"""GRM training pairs (RetouchIQ Sec. 4.2): strong = the expert edit, weak = a worse edit of the same photo.

A pair is ``(source, strong, weak, instruction)``. The strong image is the expert program rendered by
rlkit's engine; weak images come from a :class:`Perturber` (perturbation pairs, for GRM SFT and the first
RL round) or from the policy's own edits (policy pairs, for PGRT). Every weak edit passes one documented
filter, :class:`WeakFilter`: its rendering differs from the strong rendering by at least ``min_gap`` under an
image metric (default mean CIEDE2000 >= 2, a clearly visible difference). The expert edit is the reference
for the instruction, so a visible departure from it is a measurably worse edit; departures smaller than a
just-noticeable difference would make the ranking label noise, so they are dropped. Strong and weak are
rendered by the same engine, so the renderer can never tell them apart.

SFT pairs are then annotated (metrics + two scores) by an :class:`Annotator`; as in the paper, only
annotations that score the strong edit above the weak one are kept. Each pair records where the strong
image is shown (``strong_position`` 1 or 2, a seeded coin flip), so the GRM sees both orders in training.

Pairs are an HF ``datasets.Dataset`` with :func:`pair_features` (``RewardPairRecord``'s columns plus
``record_id``, ``weak_kind``, ``weak_note``, ``gap``, ``strong_position``), saved with :func:`save_pairs` and
read back with :func:`load_pairs`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from PIL import Image
from rich.progress import track

from rlkit.data import (
    WEAK_METRICS,
    RetouchRecord,
    RewardPairRecord,
    describe_changes,
    open_image,
    perturb_program,
)
from rlkit.ops import (
    PARAM_SPECS,
    EditProgram,
    apply_program,
    parse_program,
    render_program,
    to_pil,
    to_tensor,
)
from rlkit.rewards.grm.backends import GRMBackend
from rlkit.rewards.grm.prompt import DEFAULT_TEMPLATE, SCORE_MAX, GRMTemplate, parse_grm_output

logger = logging.getLogger("rlkit.rewards.grm")

__all__ = [
    "PairSource", "pair_sources", "WeakFilter",
    "Perturber", "RandomKeyPerturber", "MLLMPerturber",
    "AnnotationRequest", "Annotation", "Annotator", "TemplateAnnotator", "EndpointAnnotator", "program_metrics",
    "PairBuild", "build_perturbed_pairs", "build_policy_pairs",
    "pair_features", "save_pairs", "load_pairs", "PairDataError", "WEAK_KINDS",
]

WEAK_KINDS = ("perturbed", "policy")


class PairDataError(ValueError):
    """Pair data is missing, unreadable or lacks columns; the message names the file or row."""


# ------------------------------------------------------------------------------------------ sources
@dataclass
class PairSource:
    """One expert edit: the photo, its expert program, the strong rendering and the instruction."""

    id: str
    source: Image.Image
    program: EditProgram
    instruction: str
    strong: Image.Image | None = None

    def __post_init__(self) -> None:
        if self.strong is None:
            self.strong = to_pil(apply_program(to_tensor(self.source), self.program))[0]


def _program_of(value: Any, where: str) -> EditProgram:
    if isinstance(value, EditProgram):
        return value
    if isinstance(value, Mapping):
        return EditProgram.from_dict(dict(value))
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{") and text.endswith("}"):
            try:
                return EditProgram.from_dict(json.loads(text))
            except ValueError:
                pass  # not canonical JSON: read it as program text below
        parsed = parse_program(text, "auto")
        if parsed.program is None:
            why = parsed.problems[0].reason if parsed.problems else "no program found"
            raise PairDataError(f"{where}: the expert program does not parse ({why})")
        return parsed.program
    raise PairDataError(f"{where}: expected an EditProgram, a dict or program text, got {type(value).__name__}")


def _first(row: Mapping[str, Any], names: Sequence[str], where: str, what: str) -> Any:
    for n in names:
        if row.get(n) is not None:
            return row[n]
    raise PairDataError(f"{where}: no {what} (looked for columns {list(names)}; the row has {sorted(row)})")


def pair_sources(rows: Sequence[Any]) -> list[PairSource]:
    """:class:`PairSource` items from ``RetouchRecord``s or row dicts (``image``/``before``/``source_image``,
    ``instruction``, ``program`` as an EditProgram, a dict, canonical JSON or program text; optional ``id``)."""
    out = []
    for i, row in enumerate(rows):
        if isinstance(row, RetouchRecord):
            row = {"before": row.before, "instruction": row.instruction, "program": row.program, "id": row.id}
        if not isinstance(row, Mapping):
            raise PairDataError(f"row {i}: expected a RetouchRecord or a dict, got {type(row).__name__}")
        where = f"row {i} ({row.get('id') or 'no id'})"
        image = open_image(_first(row, ("source_image", "image", "before"), where, "source image"))
        program = _program_of(_first(row, ("program", "expert_program"), where, "expert program"), where)
        if not program.params and not program.curves and not program.local:
            raise PairDataError(f"{where}: the expert program is the identity; no weaker edit exists")
        out.append(PairSource(str(row.get("id") or f"row{i}"), image, program, str(row.get("instruction") or "")))
    return out


# ------------------------------------------------------------------------------------------ filter
@dataclass(frozen=True)
class WeakFilter:
    """Keeps a weak edit when ``metric(weak, strong) >= min_gap`` (see the module doc for why).

    ``metric``: a name in ``rlkit.data.WEAK_METRICS`` (delta_e2000, delta_e76, l1, l2, ssim = 1 - SSIM) or a
    callable ``(weak, strong) -> per-image badness`` over (N, 3, H, W) tensors in [0, 1].
    """

    metric: str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = "delta_e2000"
    min_gap: float = 2.0

    def __post_init__(self) -> None:
        if not callable(self.metric) and self.metric not in WEAK_METRICS:
            raise ValueError(f"WeakFilter: unknown metric {self.metric!r}; choose from {sorted(WEAK_METRICS)}")
        if not self.min_gap >= 0:
            raise ValueError(f"WeakFilter: min_gap must be >= 0, got {self.min_gap}")

    def gaps(self, weak: torch.Tensor, strong: torch.Tensor) -> list[float]:
        """Badness of each weak image (N, 3, H, W) against the strong one (1 or N, 3, H, W)."""
        fn = self.metric if callable(self.metric) else WEAK_METRICS[self.metric]
        return [float(g) for g in fn(weak, strong.expand_as(weak))]

    def describe(self) -> str:
        name = getattr(self.metric, "__name__", "custom") if callable(self.metric) else self.metric
        return f"{name}(weak, strong) >= {self.min_gap:g}"


# ------------------------------------------------------------------------------------------ perturbers
@runtime_checkable
class Perturber(Protocol):
    """Proposes candidate weak programs for one expert edit: ``propose(item, n, seed) -> [(program, note)]``.

    Candidates may be fewer than ``n``; the builder renders and filters them."""

    def propose(self, item: PairSource, n: int, seed: int) -> list[tuple[EditProgram, str]]: ...


@dataclass
class RandomKeyPerturber:
    """Built-in perturber: ``rlkit.data.perturb_program`` omits or mis-sets 1-3 key parameters (chosen with
    probability proportional to how far each is from its default)."""

    n_keys: tuple[int, int] = (1, 3)
    omit_prob: float = 0.5
    under: tuple[float, float] = (0.0, 0.5)
    over: tuple[float, float] = (1.5, 2.5)

    def propose(self, item: PairSource, n: int, seed: int) -> list[tuple[EditProgram, str]]:
        out = []
        for k in range(n):
            weak = perturb_program(item.program, seed + k, n_keys=self.n_keys, omit_prob=self.omit_prob,
                                   under=self.under, over=self.over)
            out.append((weak, "; ".join(describe_changes(item.program, weak))))
        return out


_PERTURB_SYSTEM = ("You prepare training data for a photo-editing reward model. Given a photo, the user's "
                   "instruction and an expert's edit program, you write a plausible but inferior edit.")
_PERTURB_ASK = ("Instruction: {instruction}\nExpert edit program: {program}\nWrite a different edit program that "
                "still looks like a sensible attempt but omits or mis-sets one to three key parameters of the "
                "expert program, so the result is visibly worse for this instruction (variant {variant}). "
                "Answer with the program only, in the same form, e.g. {{exposure=+0.3; contrast=+10}}.")


@dataclass
class MLLMPerturber:
    """RetouchIQ's guided perturbation: a frozen multimodal model (any OpenAI-compatible endpoint through
    :class:`OpenAIBackend`, or another :class:`GRMBackend`) sees the photo, the expert rendering and program
    and writes a weaker program; answers that do not parse, or equal the expert program, are dropped."""

    backend: GRMBackend
    fmt: str = "retouchiq"
    system: str = _PERTURB_SYSTEM
    ask: str = _PERTURB_ASK
    last_problems: Counter = field(default_factory=Counter)

    def propose(self, item: PairSource, n: int, seed: int) -> list[tuple[EditProgram, str]]:
        program_text = render_program(item.program, self.fmt)
        reqs = []
        for k in range(n):  # the variant number makes each request distinct (replies are cached per request)
            text = self.ask.format(instruction=item.instruction or "(none)", program=program_text, variant=seed + k)
            reqs.append([{"role": "system", "content": [{"type": "text", "text": self.system}]},
                         {"role": "user", "content": [{"type": "text", "text": "Photo:"},
                                                      {"type": "image", "image": item.source},
                                                      {"type": "text", "text": "Expert edit:"},
                                                      {"type": "image", "image": item.strong},
                                                      {"type": "text", "text": text}]}])
        out = []
        for reply in self.backend.generate(reqs):
            if reply.text is None:
                self.last_problems[f"perturber request failed: {reply.error}"] += 1
                continue
            parsed = parse_program(reply.text, "auto")
            if parsed.program is None:
                why = parsed.problems[0].reason if parsed.problems else "no program"
                self.last_problems[f"perturber answer did not parse: {why}"] += 1
            elif parsed.program.to_dict() == item.program.to_dict():
                self.last_problems["perturber answer equals the expert program"] += 1
            else:
                out.append((parsed.program, " ".join(reply.text.split())[:200]))
        return out


# ------------------------------------------------------------------------------------------ annotators
@dataclass
class AnnotationRequest:
    """What an annotator sees: the pair, both programs, the filter gap and where the strong image is shown."""

    instruction: str
    source: Image.Image
    strong: Image.Image
    weak: Image.Image
    strong_program: EditProgram
    weak_program: EditProgram | None
    gap: float
    strong_position: int


@dataclass
class Annotation:
    """Metrics a good edit meets, and the scores (0-10) of the strong and the weak edit."""

    metrics: list[str]
    score_strong: float
    score_weak: float


@runtime_checkable
class Annotator(Protocol):
    """``annotator(request) -> Annotation | None``; a ``batch(requests)`` method, if present, is used instead
    to annotate many pairs at once (e.g. concurrent requests to a served model)."""

    def __call__(self, request: AnnotationRequest) -> Annotation | None: ...


_VERBS = {True: "raised", False: "lowered"}


def program_metrics(program: EditProgram, *, max_items: int = 3) -> list[str]:
    """Short metrics read off an expert program: its largest adjustments, e.g. ``["exposure raised",
    "temperature lowered inside the radial mask"]`` (global sliders by offset / range, then curves, locals)."""
    ranked = []
    for k, v in program.params.items():
        s = PARAM_SPECS[k]
        ranked.append((abs(v - s.default) / (s.hi - s.lo), f"{k.replace('_', ' ')} {_VERBS[v > s.default]}"))
    ranked.sort(key=lambda kv: -kv[0])
    items = [text for _, text in ranked]
    items += [f"tone curve ({ch}) reshaped" for ch in program.curves]
    for la in program.local:
        where = type(la.mask).__name__.replace("Mask", "").lower() or "local"
        for k, v in sorted(la.params.items(), key=lambda kv: -abs(kv[1])):
            items.append(f"{k.replace('_', ' ')} {_VERBS[v > 0]} inside the {where} mask")
    return items[:max_items] or ["the edit follows the instruction"]


@dataclass
class TemplateAnnotator:
    """Offline annotator: metrics from the expert program (:func:`program_metrics`), the strong edit scored
    ``strong_score`` and the weak one lower by an amount growing with the filter gap (integers, in
    ``[min_weak, strong_score - 1]``; ``full_gap`` or more gives ``min_weak``)."""

    strong_score: float = 8.0
    min_weak: float = 2.0
    full_gap: float = 6.0

    def __post_init__(self) -> None:
        if not 0 <= self.min_weak < self.strong_score <= SCORE_MAX or self.full_gap <= 0:
            raise ValueError(f"TemplateAnnotator: need 0 <= min_weak < strong_score <= {SCORE_MAX:g} and "
                             f"full_gap > 0 (got {self.min_weak}, {self.strong_score}, {self.full_gap})")

    def __call__(self, request: AnnotationRequest) -> Annotation:
        drop = (self.strong_score - self.min_weak) * min(1.0, request.gap / self.full_gap)
        weak = float(min(self.strong_score - 1, max(self.min_weak, round(self.strong_score - drop))))
        return Annotation(program_metrics(request.strong_program), float(self.strong_score), weak)


@dataclass
class EndpointAnnotator:
    """Annotate with a judge model through a :class:`GRMBackend` (e.g. :class:`OpenAIBackend` on a large VLM
    served by vLLM): the pair is shown in its recorded order with the GRM template and parsed with
    :func:`parse_grm_output`; unparseable answers and failed requests give None (counted by the builder)."""

    backend: GRMBackend
    template: GRMTemplate = DEFAULT_TEMPLATE
    last_problems: Counter = field(default_factory=Counter)

    def _messages(self, r: AnnotationRequest) -> list[dict[str, Any]]:
        shown = [r.strong, r.weak] if r.strong_position == 1 else [r.weak, r.strong]
        return self.template.messages(r.instruction, r.source, shown)

    def batch(self, requests: Sequence[AnnotationRequest]) -> list[Annotation | None]:
        out: list[Annotation | None] = []
        for r, reply in zip(requests, self.backend.generate([self._messages(r) for r in requests])):
            if reply.text is None:
                self.last_problems[f"annotator request failed: {reply.error}"] += 1
                out.append(None)
                continue
            p = parse_grm_output(reply.text, 2)
            if not p.ok:
                self.last_problems[f"annotator answer unparseable: {p.reason}"] += 1
                out.append(None)
                continue
            s1, s2 = p.scores  # type: ignore[misc]
            strong, weak = (s1, s2) if r.strong_position == 1 else (s2, s1)
            out.append(Annotation(p.metrics, strong, weak))
        return out

    def __call__(self, request: AnnotationRequest) -> Annotation | None:
        return self.batch([request])[0]


# ------------------------------------------------------------------------------------------ building
@dataclass
class PairBuild:
    """A built pair dataset and what was dropped, by reason (the counts go into run manifests)."""

    dataset: Any  # datasets.Dataset with pair_features()
    kept: int
    dropped: dict[str, int]
    criterion: str

    def summary(self) -> dict[str, Any]:
        return {"kept": self.kept, "dropped": dict(sorted(self.dropped.items())), "criterion": self.criterion}


def pair_features():  # -> datasets.Features
    """RewardPairRecord's columns plus ``record_id``, ``weak_kind`` (perturbed/policy), ``weak_note`` (what
    was changed, or the policy's text), ``gap`` (the filter metric) and ``strong_position`` (1 or 2)."""
    import datasets  # deferred: nothing else in rewards needs datasets (~1.1 s to import)

    base = dict(RewardPairRecord.features())
    base.update({"record_id": datasets.Value("string"), "weak_kind": datasets.Value("string"),
                 "weak_note": datasets.Value("string"), "gap": datasets.Value("float32"),
                 "strong_position": datasets.Value("int8")})
    return datasets.Features(base)


def _position(seed: int, *key: Any) -> int:
    h = hashlib.sha256(repr((seed, *key)).encode()).digest()
    return 1 if h[0] % 2 == 0 else 2


def _row(item: PairSource, weak_img: Image.Image, weak_program: EditProgram | None, kind: str, note: str,
         gap: float, k: int, annotation: Annotation | None, position: int) -> dict[str, Any]:
    rec = RewardPairRecord(item.source, item.strong, weak_img, item.instruction,
                           list(annotation.metrics) if annotation else [],
                           annotation.score_strong if annotation else None,
                           annotation.score_weak if annotation else None,
                           item.program, weak_program, f"{item.id}-{kind}{k}")
    return {**rec.to_example(), "record_id": item.id, "weak_kind": kind, "weak_note": note, "gap": gap,
            "strong_position": position}


def _dataset(rows: list[dict[str, Any]]) -> Any:
    import datasets  # deferred: see pair_features

    if not rows:
        return datasets.Dataset.from_dict({k: [] for k in pair_features()}, features=pair_features())
    return datasets.Dataset.from_list(rows, features=pair_features())


def _annotate(annotator: Any, requests: list[AnnotationRequest]) -> list[Annotation | None]:
    if hasattr(annotator, "batch"):
        out = list(annotator.batch(requests))
    else:
        out = [annotator(r) for r in requests]
    if len(out) != len(requests):
        raise ValueError(f"annotator returned {len(out)} annotations for {len(requests)} pairs")
    return out


def _progress(items: Sequence[Any], desc: str, show: bool) -> Any:
    if not show:
        return items

    return track(items, total=len(items), description=desc)


def build_perturbed_pairs(items: Sequence[PairSource], *, per_record: int = 1, candidates: int = 8,
                          perturber: Perturber | None = None, annotator: Any = None,
                          weak_filter: WeakFilter = WeakFilter(), seed: int = 0, progress: bool = False
                          ) -> PairBuild:
    """Up to ``per_record`` perturbation pairs per expert edit (from at most ``candidates`` proposals each).

    With an ``annotator`` (a callable ``AnnotationRequest -> Annotation | None``, :class:`TemplateAnnotator`,
    :class:`EndpointAnnotator`, ...) pairs carry metrics and scores, and only annotations that score the
    strong edit strictly above the weak one are kept; without one the pairs are unannotated (evaluation, RL).
    """
    if per_record < 1 or candidates < per_record:
        raise ValueError(f"build_perturbed_pairs: need 1 <= per_record <= candidates, got {per_record}, {candidates}")
    perturber = perturber if perturber is not None else RandomKeyPerturber()
    dropped: Counter = Counter()
    pending: list[tuple[PairSource, Image.Image, EditProgram, str, float, int, int]] = []
    for j, item in enumerate(_progress(items, "GRM pairs: perturb + filter", progress)):
        item_seed = seed * 1_000_003 + 1009 * j
        props = perturber.propose(item, candidates, item_seed)
        if not props:
            dropped["perturber proposed nothing"] += 1
            continue
        x = to_tensor(item.source)
        weak_imgs = to_pil(apply_program(x.expand(len(props), -1, -1, -1), [p for p, _ in props]))
        gaps = weak_filter.gaps(to_tensor(weak_imgs), to_tensor(item.strong))
        k = 0
        for (prog, note), img, gap in zip(props, weak_imgs, gaps):
            if k == per_record:
                break
            if gap < weak_filter.min_gap:
                dropped[f"weak edit within the filter gap ({weak_filter.describe()} failed)"] += 1
                continue
            pending.append((item, img, prog, note, gap, k, _position(seed, item.id, "perturbed", k)))
            k += 1
        if k == 0:
            dropped["no candidate passed the filter"] += 1
    for problem, count in getattr(perturber, "last_problems", Counter()).items():
        dropped[problem] += count
    annotations: list[Annotation | None] = [None] * len(pending)
    if annotator is not None and pending:
        requests = [AnnotationRequest(it.instruction, it.source, it.strong, img, it.program, prog, gap, pos)
                    for it, img, prog, _note, gap, _k, pos in pending]
        annotations = _annotate(annotator, requests)
        for problem, count in getattr(annotator, "last_problems", Counter()).items():
            dropped[problem] += count
    rows = []
    for (it, img, prog, note, gap, k, pos), ann in zip(pending, annotations):
        if annotator is not None:
            if ann is None:
                dropped["annotator gave no annotation"] += 1
                continue
            if not ann.score_strong > ann.score_weak:
                dropped["annotation ranks the weak edit at or above the strong one"] += 1
                continue
        rows.append(_row(it, img, prog, "perturbed", note, gap, k, ann, pos))
    return PairBuild(_dataset(rows), len(rows), dict(dropped), weak_filter.describe())


def build_policy_pairs(items: Sequence[PairSource], completions: Sequence[Sequence[str]], *, fmt: str = "auto",
                       weak_filter: WeakFilter = WeakFilter(), seed: int = 0, unparsed: str = "identity"
                       ) -> PairBuild:
    """PGRT pairs: the weak image is the policy's edit (``completions[j]``: texts sampled for ``items[j]``),
    parsed and executed by the engine, then filtered like perturbation pairs (dropped ones are counted).

    ``unparsed``: what a completion that does not parse becomes. ``"identity"`` (default): executing it changes
    nothing, so its result is the unedited photo, which is part of what the policy produces and must rank below
    the expert edit; ``"drop"``: no pair.
    """
    if len(completions) != len(items):
        raise ValueError(f"build_policy_pairs: {len(completions)} completion lists for {len(items)} items")
    if unparsed not in ("identity", "drop"):
        raise ValueError(f"build_policy_pairs: unparsed={unparsed!r}; expected 'identity' or 'drop'")
    dropped: Counter = Counter()
    rows = []
    for item, texts in zip(items, completions):
        progs, notes = [], []
        for text in texts:
            parsed = parse_program(text, fmt)
            note = " ".join(text.split())[:300]
            if parsed.program is not None:
                progs.append(parsed.program)
                notes.append(note)
            elif unparsed == "identity":
                progs.append(EditProgram())
                notes.append("(did not parse: the unedited photo) " + note)
            else:
                dropped["policy edit did not parse"] += 1
        if not progs:
            continue
        imgs = to_pil(apply_program(to_tensor(item.source).expand(len(progs), -1, -1, -1), progs))
        gaps = weak_filter.gaps(to_tensor(imgs), to_tensor(item.strong))
        for k, (prog, note, img, gap) in enumerate(zip(progs, notes, imgs, gaps)):
            if gap < weak_filter.min_gap:
                dropped[f"policy edit within the filter gap ({weak_filter.describe()} failed)"] += 1
                continue
            rows.append(_row(item, img, prog, "policy", note, gap, k, None, _position(seed, item.id, "policy", k)))
    return PairBuild(_dataset(rows), len(rows), dict(dropped), weak_filter.describe())


# ------------------------------------------------------------------------------------------ storage
def save_pairs(dataset: Any, path: str | Path) -> Path:
    """Write a pair dataset with ``save_to_disk`` into ``path`` atomically (a sibling temp folder renamed in)."""
    path = Path(path)
    missing = sorted(set(pair_features()) - set(dataset.column_names))
    if missing:
        raise PairDataError(f"save_pairs: the dataset lacks pair column(s) {missing}")
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    dataset.save_to_disk(str(tmp))
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)
    return path


def load_pairs(path: str | Path) -> Any:
    """Read a pair dataset written by :func:`save_pairs`; a missing, unreadable or incomplete folder raises
    :class:`PairDataError` naming it."""
    from datasets import load_from_disk  # deferred: see pair_features

    path = Path(path)
    if not path.is_dir():
        raise PairDataError(f"pair dataset {str(path)!r} does not exist")
    try:
        ds = load_from_disk(str(path))
    except Exception as exc:  # noqa: BLE001 - datasets raises many types for damaged folders
        raise PairDataError(f"pair dataset {str(path)!r} is unreadable ({type(exc).__name__}: {exc})") from exc
    missing = sorted(set(pair_features()) - set(getattr(ds, "column_names", [])))
    if missing:
        raise PairDataError(f"pair dataset {str(path)!r} lacks column(s) {missing}")
    return ds

