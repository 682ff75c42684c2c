"""VIEScore-style judging of edits: semantic consistency (SC) and perceptual quality (PQ) on 0-10 by a VLM.

RetouchIQ (Sec. 5.1) scores RetouchEval edits with an MLLM judge as VIEScore does (Ku et al., 2024): SC asks
whether the edit follows the instruction without over-editing, PQ whether the edited image looks natural
and free of artifacts, and the overall O = sqrt(SC * PQ). Any :class:`~rlkit.rewards.GenerativeRewardModel`
backend answers (an in-process transformers VLM, or an OpenAI-compatible server). The prompts ask for a
short reasoning and ``<score>N</score>``; the answer is read by rlkit's GRM parser (untrusted text, never
evaluated). A sample the judge cannot score (server error, unparseable answer) keeps None with the reason,
and the suites count those.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image

from rlkit.rewards import (
    GenerativeRewardModel,
    GRMTemplate,
    OpenAIBackend,
    TransformersBackend,
    parse_grm_output,
)

if TYPE_CHECKING:
    from rlkit.rewards.grm import GRMBackend

__all__ = ["VIEScoreJudge", "SC_TEMPLATE", "PQ_TEMPLATE", "JudgeScore", "Judge"]

_SYSTEM = ("You are a professional digital artist and photo retoucher. You evaluate the results of image "
           "edits objectively and answer in the requested format.")
_SC = (
    "Instruction: {instruction}\n"
    "The first image is the original photo and the second is an edited version of it. Rate how well the "
    "edit carries out the instruction, on a scale from 0 to 10: 0 means the edited image does not follow "
    "the instruction at all, 10 means it follows it perfectly. Lower the score for over-editing (changes "
    "the instruction did not ask for). Explain briefly, then give the rating as <score>N</score>."
)
_PQ = (
    "Look only at the edited (second) image. Rate its perceptual quality on a scale from 0 to 10: how "
    "natural it looks (0: clearly unnatural, e.g. wrong colours or lighting; 10: natural) and how free "
    "it is of artifacts such as clipping, banding, halos, noise or colour casts (0: heavy artifacts; "
    "10: none). Give the lower of the two. Explain briefly, then give the rating as <score>N</score>."
)

SC_TEMPLATE = GRMTemplate(system=_SYSTEM, pointwise=_SC)
PQ_TEMPLATE = GRMTemplate(system=_SYSTEM, pointwise=_PQ)


@dataclass
class JudgeScore:
    """SC and PQ of one edit (None where the judge could not score; ``errors`` says why)."""

    sc: float | None
    pq: float | None
    errors: list[str]


class VIEScoreJudge:
    """SC and PQ for batches of (instruction, source, edited) through a GRM backend."""

    def __init__(self, judge: GenerativeRewardModel | GRMBackend, *, name: str = "judge") -> None:
        backend = judge.backend if isinstance(judge, GenerativeRewardModel) else judge
        if not hasattr(backend, "agenerate"):
            raise TypeError(f"VIEScoreJudge: {judge!r} is neither a GenerativeRewardModel nor a GRM backend")
        self.backend, self.name = backend, name

    def score(self, instructions: Sequence[str], sources: Sequence[Image.Image], edited: Sequence[Image.Image]
              ) -> list[JudgeScore]:
        """One :class:`JudgeScore` per edit (two judge requests each: SC, then PQ)."""
        n = len(edited)
        if not len(instructions) == len(sources) == n:
            raise ValueError(f"VIEScoreJudge.score: {len(instructions)} instructions, {len(sources)} sources and "
                             f"{n} edited images; they must be parallel")
        reqs = [SC_TEMPLATE.messages(instructions[i] or "(none)", sources[i], [edited[i]]) for i in range(n)]
        reqs += [PQ_TEMPLATE.messages(instructions[i] or "(none)", sources[i], [edited[i]]) for i in range(n)]
        replies = asyncio.run(self.backend.agenerate(reqs))
        out = []
        for i in range(n):
            vals: list[float | None] = []
            errors = []
            for what, rep in (("SC", replies[i]), ("PQ", replies[n + i])):
                if rep.text is None:
                    vals.append(None)
                    errors.append(f"{what}: judge error: {rep.error}")
                    continue
                p = parse_grm_output(rep.text, 1, require_metrics=False)
                vals.append(p.scores[0] if p.ok else None)
                if not p.ok:
                    errors.append(f"{what}: unparseable answer ({p.reason}): {' '.join(rep.text.split())[:80]!r}")
            out.append(JudgeScore(vals[0], vals[1], errors))
        return out


#: what the retouching suites take as a judge: a VIEScoreJudge, a GRM, or a GRM backend
Judge = VIEScoreJudge | GenerativeRewardModel | OpenAIBackend | TransformersBackend
