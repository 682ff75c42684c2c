"""`evaluate` metric: AUC-Judd, NSS, CC, SIM, KLD of saliency maps (rlkit.metrics, MIT benchmark definitions)."""

import datasets
import evaluate
import numpy as np

from rlkit.metrics import saliency_scores

_DESCRIPTION = "Saliency metrics (MIT Saliency Benchmark definitions, rlkit.metrics.saliency_scores): AUC-Judd, " \
               "NSS, CC, SIM and KLD, averaged over images (protocol 'mit') or over images with non-empty ground " \
               "truth (protocol 'richhf')."
_KWARGS = """
Args:
    predictions: list of 2-d maps (lists of rows of floats), one per image.
    references: list of 2-d ground-truth maps of the same shapes (non-negative).
    protocol: "mit" (default) or "richhf".
    fixation_threshold: fixations are ground truth >= threshold * its max (default 0.5).
Returns: {"auc_judd", "nss", "cc", "sim", "kld"} means.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class RlkitSaliency(evaluate.Metric):
    def _info(self):
        seq = datasets.Sequence(datasets.Sequence(datasets.Value("float32")))
        return evaluate.MetricInfo(description=_DESCRIPTION, citation="", inputs_description=_KWARGS,
                                   features=datasets.Features({"predictions": seq, "references": seq}))

    def _compute(self, predictions, references, protocol="mit", fixation_threshold=0.5):
        out = {k: [] for k in ("auc_judd", "nss", "cc", "sim", "kld")}
        for p, g in zip(predictions, references):  # images may differ in size: one at a time
            s = saliency_scores(np.asarray(p, np.float32)[None], np.asarray(g, np.float32)[None], protocol="richhf",
                                fixation_threshold=fixation_threshold)
            for k in out:
                out[k].append(s[k])
        if protocol == "mit" and any(np.isnan(v) for vals in out.values() for v in vals):
            raise ValueError("rlkit_saliency: a metric is undefined for an image (empty ground truth); "
                             "use protocol='richhf'")
        return {k: float(np.nanmean(v)) if not np.isnan(v).all() else float("nan") for k, v in out.items()}
