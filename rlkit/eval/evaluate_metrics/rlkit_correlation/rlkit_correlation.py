"""`evaluate` metric: SRCC, KRCC and PLCC (rlkit.metrics), e.g. an evaluator's scores against MOS."""

import datasets
import evaluate

from rlkit.metrics import krcc, plcc, srcc

_DESCRIPTION = "Spearman (SRCC), Kendall tau-b (KRCC) and Pearson (PLCC; optionally after a 4-parameter logistic " \
               "fit) correlation of predictions with references, as rlkit.metrics computes them."
_KWARGS = """
Args:
    predictions: list of float scores.
    references: list of float subjective scores (MOS), parallel to predictions.
    logistic: bool, PLCC after the VQEG 4-parameter logistic mapping (default False).
Returns: {"srcc": float, "krcc": float, "plcc": float}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class RlkitCorrelation(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(description=_DESCRIPTION, citation="", inputs_description=_KWARGS,
                                   features=datasets.Features({"predictions": datasets.Value("float64"),
                                                               "references": datasets.Value("float64")}))

    def _compute(self, predictions, references, logistic=False):
        return {"srcc": srcc(predictions, references), "krcc": krcc(predictions, references),
                "plcc": plcc(predictions, references, logistic=logistic)}
