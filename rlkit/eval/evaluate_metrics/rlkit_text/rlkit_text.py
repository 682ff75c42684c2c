"""`evaluate` metric: flaw-type accuracy, ROUGE-L, METEOR and sentence-embedding cosine (rlkit.metrics)."""

import datasets
import evaluate
import numpy as np

from rlkit.metrics import meteor, rouge_l, sentence_similarity, type_accuracy

_DESCRIPTION = "Text metrics for diagnoses (rlkit.metrics): ROUGE-L F (rouge-score), METEOR (nltk; needs " \
               "WordNet), cosine of all-MiniLM-L6-v2 sentence embeddings, and, with metric='type_accuracy', the " \
               "share of normalised labels that match."
_KWARGS = """
Args:
    predictions: list of strings.
    references: list of strings.
    metrics: which to compute, from ("rouge_l", "meteor", "sentence", "type_accuracy"); default rouge_l only.
Returns: {name: mean} for each requested metric.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class RlkitText(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(description=_DESCRIPTION, citation="", inputs_description=_KWARGS,
                                   features=datasets.Features({"predictions": datasets.Value("string"),
                                                               "references": datasets.Value("string")}))

    def _compute(self, predictions, references, metrics=("rouge_l",)):
        fns = {"rouge_l": lambda p, r: float(np.mean(rouge_l(p, r))),
               "meteor": lambda p, r: float(np.mean(meteor(p, r))),
               "sentence": lambda p, r: float(np.mean(sentence_similarity(p, r))),
               "type_accuracy": type_accuracy}
        bad = [m for m in metrics if m not in fns]
        if bad:
            raise ValueError(f"rlkit_text: unknown metric(s) {bad}; choose from {sorted(fns)}")
        return {m: fns[m](list(predictions), list(references)) for m in metrics}
