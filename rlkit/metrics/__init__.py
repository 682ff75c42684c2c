"""rlkit.metrics: saliency, text, correlation and image metrics with the papers' definitions."""

from rlkit.metrics.correlation import fit_logistic4, krcc, logistic4, plcc, srcc
from rlkit.metrics.image import delta_e76, delta_e2000, l1, l2, psnr, rgb_to_lab, ssim
from rlkit.metrics.lpips import LPIPS, LPIPSUnavailable, load_lpips, lpips_status
from rlkit.metrics.saliency import (
    KLD_EPS,
    SALIENCY_METRICS,
    auc_judd,
    cc,
    kld,
    nss,
    saliency_metrics,
    saliency_scores,
    sim,
)
from rlkit.metrics.scores import editrefiner_overall, viescore_overall
from rlkit.metrics.text import (
    WORDNET_HELP,
    SentenceSimilarity,
    cpu_has_fast_bf16,
    meteor,
    normalize_label,
    resolve_dtype,
    rouge_l,
    sentence_similarity,
    tokenize,
    type_accuracy,
)
from rlkit.metrics.word2vec import Word2VecSimilarity

__all__ = [
    "auc_judd", "nss", "cc", "sim", "kld", "saliency_metrics", "saliency_scores", "SALIENCY_METRICS", "KLD_EPS",
    "type_accuracy", "normalize_label", "rouge_l", "meteor", "tokenize", "SentenceSimilarity",
    "sentence_similarity", "WORDNET_HELP", "cpu_has_fast_bf16", "resolve_dtype",
    "srcc", "krcc", "plcc", "logistic4", "fit_logistic4",
    "l1", "l2", "psnr", "ssim", "rgb_to_lab", "delta_e76", "delta_e2000",
    "editrefiner_overall", "viescore_overall",
    "LPIPS", "LPIPSUnavailable", "load_lpips", "lpips_status", "Word2VecSimilarity",
]
