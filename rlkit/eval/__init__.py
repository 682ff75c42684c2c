"""rlkit.eval: benchmark suites, one runner and the reports (RetouchIQ, Agentic Retoucher, EditRefiner tables).

- retouching: :func:`run_retouch` on :func:`load_retouch_samples` (RetouchEval-style) or :func:`load_fivek`
  (MIT-Adobe5K-style) with baselines (:class:`IdentitySystem`, :class:`RandomProgramSystem`,
  :class:`ExpertSystem`) and policies (:class:`TransformersPolicy`, :class:`VLLMPolicy`, :class:`OpenAIPolicy`);
- agents: :func:`run_saliency`, :func:`run_reasoning`, :func:`run_evaluator`, :func:`run_loop`;
- :func:`run_suite` (sharding over accelerate processes, resume), :func:`compare_results` (paired bootstrap).

Command line: ``rlkit eval ...`` / ``accelerate launch -m rlkit.eval ...`` (docs/evaluation.md).
"""

from rlkit.eval.compare import Difference, compare_results, paired_bootstrap
from rlkit.eval.evaluator import Evaluator, EvaluatorSuite, FullReferenceEvaluator, MOSSample, run_evaluator
from rlkit.eval.fivek import load_fivek, make_synthetic_fivek, read_split
from rlkit.eval.judge import PQ_TEMPLATE, SC_TEMPLATE, VIEScoreJudge
from rlkit.eval.loop import LoopSample, LoopSuite, run_loop
from rlkit.eval.policy import (
    BASELINES,
    ExpertSystem,
    IdentitySystem,
    OpenAIPolicy,
    RandomProgramSystem,
    System,
    Task,
    TransformersPolicy,
    VLLMPolicy,
    load_system,
)
from rlkit.eval.reasoning import MajorityReasoner, Reasoner, ReasoningSample, ReferenceReasoner, run_reasoning
from rlkit.eval.report import read_results
from rlkit.eval.retouch import RetouchSample, RetouchSuite, load_retouch_samples, run_retouch
from rlkit.eval.runner import Suite, run_suite
from rlkit.eval.saliency import (
    CentreBias,
    SaliencyPredictor,
    SaliencySample,
    SpectralResidual,
    UniformSaliency,
    load_saliency_predictor,
    load_saliency_samples,
    run_saliency,
)

__all__ = [
    "run_suite", "Suite", "compare_results", "paired_bootstrap", "Difference", "read_results",
    "Task", "System", "BASELINES", "IdentitySystem", "RandomProgramSystem", "ExpertSystem", "TransformersPolicy",
    "VLLMPolicy", "OpenAIPolicy", "load_system",
    "RetouchSample", "RetouchSuite", "load_retouch_samples", "run_retouch", "load_fivek", "make_synthetic_fivek",
    "read_split", "VIEScoreJudge", "SC_TEMPLATE", "PQ_TEMPLATE",
    "SaliencyPredictor", "SaliencySample", "UniformSaliency", "CentreBias", "SpectralResidual",
    "load_saliency_samples", "load_saliency_predictor", "run_saliency",
    "Reasoner", "ReasoningSample", "ReferenceReasoner", "MajorityReasoner", "run_reasoning",
    "Evaluator", "MOSSample", "FullReferenceEvaluator", "EvaluatorSuite", "run_evaluator",
    "LoopSample", "LoopSuite", "run_loop",
]
