"""Word2Vec sentence similarity (the papers' "Word2Vec" column): cosine of mean word vectors.

Vectors are gensim ``KeyedVectors`` loaded from a path: a ``.kv`` file saved with ``KeyedVectors.save``, or a
word2vec-format file (``.bin`` binary, else text), e.g. GoogleNews-vectors-negative300.bin. A sentence is the
mean of the vectors of its in-vocabulary tokens (``rlkit.metrics.tokenize``, lower-cased); a sentence with no
known token has similarity 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rlkit.metrics._checks import check_pairs
from rlkit.metrics.text import tokenize

__all__ = ["Word2VecSimilarity"]


class Word2VecSimilarity:
    """``Word2VecSimilarity(path)(a, b)`` -> per-pair cosine of mean word vectors, in [-1, 1]."""

    def __init__(self, path: str | Path) -> None:
        try:
            from gensim.models import KeyedVectors  # deferred: optional dependency (the eval extra)
        except ImportError:
            raise ImportError("Word2Vec similarity needs gensim: pip install gensim (in rlkit's eval extra)") from None
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"Word2Vec vectors {p} do not exist")
        if p.suffix == ".kv":
            self.kv = KeyedVectors.load(str(p))
        else:
            self.kv = KeyedVectors.load_word2vec_format(str(p), binary=p.suffix == ".bin")
        self.path = str(p)

    def sentence_vector(self, text: str) -> np.ndarray | None:
        """Mean vector of the known tokens (None if none is known)."""
        words = [w for w in tokenize(text) if w in self.kv.key_to_index]
        return np.mean([self.kv[w] for w in words], axis=0) if words else None

    def __call__(self, a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        check_pairs(a, b, "a", "b")
        out = np.zeros(len(a), dtype=np.float64)
        for i, (x, y) in enumerate(zip(a, b)):
            u, v = self.sentence_vector(x), self.sentence_vector(y)
            if u is None or v is None:
                continue
            nu, nv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
            out[i] = float(np.dot(u, v) / (nu * nv)) if nu > 0 and nv > 0 else 0.0
        return out
