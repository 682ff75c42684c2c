"""One policy completion as every reward reads it: its text, parsed once, its edit executed once.

The environment (or the trl bridge, when there is no environment) builds a :class:`Rollout` where it
first sees a completion and hands it down; rewards read ``rollout.program`` / ``rollout.output_image`` /
``rollout.diagnosis`` and never parse or render again. :func:`complete_rollouts` fills in what a batch
still lacks (counted by :data:`WORK_COUNTS`, which the tests use to check "one parse, one render").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from rlkit.ops import EditProgram, ParseProblem, ParseResult, apply_program, parse_program
from rlkit.policies import DiagnosisParse, parse_diagnosis
from rlkit.rewards.images import as_tensors

__all__ = ["Rollout", "WORK_COUNTS", "complete_rollouts", "NEEDS"]

#: what a reward may need from a rollout: the parsed program, the executed edit, the parsed diagnosis
NEEDS = frozenset({"program", "output_image", "diagnosis"})

#: parses and renders done by :func:`complete_rollouts` in this process (keys "parse", "render", "diagnosis")
WORK_COUNTS: Counter[str] = Counter()


@dataclass
class Rollout:
    """A completion's text with its parse (program or diagnosis) and the edited image, each made once.

    ``output_image`` is the executed edit as a (3, H, W) float tensor in [0, 1], the environment's current
    image, or an image given by the dataset; None when the program did not parse or there is no source.
    ``valid`` is set by an environment that judged the action (a tool call that worked, a finish);
    ``program`` is what was (or will be) executed: the parse's program when the text parsed cleanly (an
    environment in non-strict mode may execute a recovered one). ``rendered`` tells whether
    ``output_image`` has been settled (so a None is not rendered again).
    """

    text: str
    parse: ParseResult | None = None
    program: EditProgram | None = None
    diagnosis: DiagnosisParse | None = None
    output_image: torch.Tensor | None = None
    rendered: bool = False
    execution_error: str | None = None
    valid: bool | None = None

    @property
    def is_valid(self) -> bool:
        """Whether the policy's action could be executed: ``valid`` when the producer set it (an
        environment), else whether a program was parsed."""
        return self.valid if self.valid is not None else self.program is not None

    @classmethod
    def from_parse(cls, text: str, parse: ParseResult) -> Rollout:
        """A rollout whose program is the parse's when the text parsed cleanly."""
        return cls(text, parse=parse, program=parse.program if parse.ok else None)

    @property
    def problems(self) -> list[ParseProblem]:
        """Why the program text did not parse (empty when it did, or when it was never parsed)."""
        return list(self.parse.problems) if self.parse is not None else []


def complete_rollouts(rollouts: Sequence[Rollout], needs: frozenset[str] | set[str], *, program_format: str,
                      sources: Sequence[object] | None = None) -> None:
    """Fill in, in place and at most once per rollout, what ``needs`` asks for and the rollouts lack.

    Programs are parsed with ``program_format``; edits are executed with one batched engine call per image
    size on ``sources`` (one source image per rollout; None where a sample has none).
    """
    unknown = set(needs) - NEEDS
    if unknown:
        raise ValueError(f"complete_rollouts: unknown needs {sorted(unknown)}; expected a subset of {sorted(NEEDS)}")
    if "diagnosis" in needs:
        for r in rollouts:
            if r.diagnosis is None:
                r.diagnosis = parse_diagnosis(r.text)
                WORK_COUNTS["diagnosis"] += 1
    if "program" in needs or "output_image" in needs:
        for r in rollouts:
            if r.parse is None:
                r.parse = parse_program(r.text, program_format)
                if r.program is None and r.parse.ok:
                    r.program = r.parse.program
                WORK_COUNTS["parse"] += 1
    if "output_image" in needs:
        todo = [i for i, r in enumerate(rollouts) if not r.rendered]
        if todo:
            if sources is None or len(sources) != len(rollouts):
                raise ValueError("complete_rollouts: rendering edits needs one source image per rollout")
            _render([rollouts[i] for i in todo], [sources[i] for i in todo])


def _render(rollouts: Sequence[Rollout], sources: Sequence[object]) -> None:
    """Execute each rollout's program on its source, batching same-size images (one engine call each)."""
    tensors = as_tensors(list(sources), what="source image")
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, (r, t) in enumerate(zip(rollouts, tensors)):
        r.rendered = True
        if t is None or r.program is None:
            continue
        by_size.setdefault((t.shape[1], t.shape[2]), []).append(i)
    for idx in by_size.values():
        stacked = torch.stack([tensors[i] for i in idx])
        with torch.no_grad():
            out = apply_program(stacked, [rollouts[i].program for i in idx], seed=0)
        WORK_COUNTS["render"] += len(idx)
        for k, i in enumerate(idx):
            rollouts[i].output_image = out[k].clamp(0.0, 1.0)
