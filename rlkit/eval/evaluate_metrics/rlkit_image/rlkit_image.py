"""`evaluate` metric: L1, L2 (0-255 scale, as RetouchEval), PSNR, SSIM and CIEDE2000 of images (rlkit.metrics)."""

import datasets
import evaluate
import numpy as np
import torch

from rlkit.metrics import delta_e2000, l1, l2, psnr, ssim

_DESCRIPTION = "Full-reference image metrics from rlkit.metrics, averaged over image pairs: l1 (mean |a-b| x 255), " \
               "l2 (root mean square x 255), psnr (dB, peak 1), ssim (Gaussian 11x11, as scikit-image) and " \
               "delta_e2000."
_KWARGS = """
Args:
    predictions: list of images as (H, W, 3) uint8 arrays or nested lists (0-255).
    references: list of images of the same shapes.
Returns: {"l1", "l2", "psnr", "ssim", "delta_e2000"} means over the pairs.
"""


def _t(img):
    a = np.asarray(img, dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1)[None].contiguous()


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class RlkitImage(evaluate.Metric):
    def _info(self):
        img = datasets.Sequence(datasets.Sequence(datasets.Sequence(datasets.Value("uint8"))))  # (H, W, 3)
        return evaluate.MetricInfo(description=_DESCRIPTION, citation="", inputs_description=_KWARGS,
                                   features=datasets.Features({"predictions": img, "references": img}))

    def _compute(self, predictions, references):
        rows = []
        for p, r in zip(predictions, references):
            x, y = _t(p), _t(r)
            rows.append((float(l1(x, y)[0]) * 255, float(l2(x, y)[0]) ** 0.5 * 255, float(psnr(x, y)[0]),
                         float(ssim(x, y)[0]), float(delta_e2000(x, y)[0])))
        m = np.mean(np.asarray(rows), axis=0)
        return dict(zip(("l1", "l2", "psnr", "ssim", "delta_e2000"), map(float, m)))
