"""``rlkit eval saliency`` and ``rlkit eval reasoning``: the agent suites from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

import datasets

from rlkit.data import BlemishRecord, EditFHFRecord, dataset_to_records
from rlkit.eval.reasoning import (
    MajorityReasoner,
    Reasoner,
    ReferenceReasoner,
    TextMetrics,
    run_reasoning,
    samples_from_records,
)
from rlkit.eval.saliency import (
    CentreBias,
    SaliencyPredictor,
    SpectralResidual,
    UniformSaliency,
    load_saliency_predictor,
    load_saliency_samples,
    run_saliency,
)

__all__ = ["register_agents"]


def _cmd_saliency(args: argparse.Namespace) -> int:
    samples = load_saliency_samples(args.data, kind=args.kind, limit=args.limit)
    names = tuple(dict.fromkeys(m for s in samples for m in s.gt))
    predictors: list[SaliencyPredictor] = [UniformSaliency(names), CentreBias(names), SpectralResidual(names)]
    for k, path in enumerate(args.net or []):
        if k == 0:
            predictors.append(load_saliency_predictor(path, untrained=True))
        predictors.append(load_saliency_predictor(path))
    recs = run_saliency(samples, predictors, args.out, batch_size=args.batch_size, resume=not args.no_resume)
    if recs is not None:
        print((Path(args.out) / "report.md").read_text(encoding="utf-8"))
    return 0


def _cmd_reasoning(args: argparse.Namespace) -> int:
    ds = datasets.load_from_disk(args.data)
    if hasattr(ds, "keys"):
        ds = ds["test"] if "test" in ds else next(iter(ds.values()))
    cls = EditFHFRecord if "edited" in ds.column_names else BlemishRecord
    records = dataset_to_records(ds.select(range(min(args.limit or len(ds), len(ds)))), cls)
    samples = samples_from_records(records, kind=args.region_kind)
    reasoners: list[Reasoner] = [ReferenceReasoner(), MajorityReasoner(samples)]
    metrics = TextMetrics(word2vec=args.word2vec, sentence_model=None if args.no_sentence else "default")
    recs = run_reasoning(samples, reasoners, args.out, metrics=metrics, batch_size=args.batch_size,
                         resume=not args.no_resume)
    if recs is not None:
        print((Path(args.out) / "report.md").read_text(encoding="utf-8"))
    return 0


def _run_options(s: argparse.ArgumentParser) -> None:
    """The output and run options every agent suite takes."""
    s.add_argument("--out", required=True)
    s.add_argument("--limit", type=int, default=None)
    s.add_argument("--batch-size", type=int, default=8)
    s.add_argument("--no-resume", action="store_true")


def register_agents(sub: argparse._SubParsersAction) -> None:
    """Add the saliency and reasoning subcommands to ``rlkit eval``."""
    s = sub.add_parser("saliency", help="AUC-Judd/NSS/CC/SIM/KLD of saliency nets against region ground truth",
                       description="Baseline rows (uniform, centre bias, spectral residual, an untrained copy of the "
                                   "first --net) and each --net (a save_pretrained folder loadable with AutoModel).")
    s.add_argument("--data", required=True, help="blemish/EditFHF dataset folder (save_to_disk) or JSONL folder")
    s.add_argument("--kind", default=None, choices=("blemish", "editfhf"), help="schema of a JSONL folder")
    s.add_argument("--net", action="append", help="saliency net folder (repeatable)")
    _run_options(s)
    s.set_defaults(func=_cmd_saliency)

    s = sub.add_parser("reasoning", help="type accuracy, sentence/Word2Vec similarity, METEOR, ROUGE of diagnoses",
                       description="Reference and majority-class rows on a blemish/EditFHF dataset (save_to_disk).")
    s.add_argument("--data", required=True)
    s.add_argument("--region-kind", default="artifact", choices=("artifact", "failure"), help="EditFHF regions")
    s.add_argument("--word2vec", default=None, help="gensim KeyedVectors (.kv) or word2vec-format file")
    s.add_argument("--no-sentence", action="store_true", help="skip the sentence-embedding column")
    _run_options(s)
    s.set_defaults(func=_cmd_reasoning)
