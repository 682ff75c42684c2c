"""The generalist reward model (RetouchIQ) as an rlkit Reward: judge edited images with a VLM.

RetouchIQ's GRM reads the instruction, the source image and the edited image, writes the metrics a good
edit should meet, then a score (Sec. 4). Its reward to the policy is that score (Eq. 2, plus a format
reward). Three modes:

* ``"pointwise"``: one request per completion, reward = score / 10.
* ``"pairwise"``: the edit is compared with a reference image (``target_image`` column, e.g. the expert
  edit); reward = 1 if the edit scores higher, 0.5 on a tie, 0 below. The two images are shown in a
  random order (seeded per sample) to cancel position bias; ``passes=2`` shows both orders and averages.
* ``"group"``: all completions of one prompt (trl's G generations) in a single request, shuffled;
  reward = each image's score / 10.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Sequence
from typing import Any

from rlkit.rewards.batch import SOURCE_IMAGE_COLUMNS, TARGET_IMAGE_COLUMNS, RewardBatch, usable_samples
from rlkit.rewards.grm.backends import GRMBackend, Reply
from rlkit.rewards.grm.prompt import DEFAULT_TEMPLATE, SCORE_MAX, GRMParse, GRMTemplate, parse_grm_output
from rlkit.rewards.images import as_pil
from rlkit.rewards.protocol import AsyncReward, RewardResult

logger = logging.getLogger("rlkit.rewards.grm")

__all__ = ["GenerativeRewardModel", "GRM_MODES"]

GRM_MODES = ("pointwise", "pairwise", "group")


def _short(text: str | None, n: int = 80) -> str:
    if text is None:
        return "None"
    t = " ".join(text.split())
    return repr(t if len(t) <= n else t[:n] + "...")


class GenerativeRewardModel(AsyncReward):
    """Reward from a generative judge (see module doc). ``backend`` is a :class:`TransformersBackend` or
    :class:`OpenAIBackend`; the edited image is the ``output_image`` column or the completion's parsed
    program rendered on the source image (``program_format``). Unparseable judge answers, server errors
    and completions without an edited image score None, each with its reason logged."""

    def __init__(self, backend: GRMBackend, *, mode: str = "pointwise", template: GRMTemplate = DEFAULT_TEMPLATE,
                 name: str = "grm", seed: int = 0, passes: int = 1, require_metrics: bool = True,
                 program_format: str | None = None) -> None:
        if mode not in GRM_MODES:
            raise ValueError(f"GenerativeRewardModel: mode={mode!r}; expected one of {GRM_MODES}")
        if passes not in (1, 2):
            raise ValueError(f"GenerativeRewardModel: passes must be 1 or 2, got {passes}")
        if not hasattr(backend, "agenerate"):
            raise TypeError(f"GenerativeRewardModel: backend {backend!r} has no generate/agenerate")
        self.backend, self.mode, self.template, self.name = backend, mode, template, name
        self.seed, self.passes, self.require_metrics, self.program_format = seed, passes, require_metrics, program_format
        cols = ["|".join(SOURCE_IMAGE_COLUMNS)]
        if mode == "pairwise":
            cols.append("|".join(TARGET_IMAGE_COLUMNS))
        self.required_columns = tuple(cols)
        self.last_parses: list[Any] = []

    # -- helpers --------------------------------------------------------------------------------
    def _rng(self, *key: Any) -> random.Random:
        h = hashlib.sha256(repr((self.seed, *key)).encode()).digest()
        return random.Random(int.from_bytes(h[:8], "little"))

    def _parse(self, reply: Reply, n: int) -> tuple[GRMParse | None, str | None]:
        if reply.text is None:
            return None, f"GRM backend error: {reply.error}"
        p = parse_grm_output(reply.text, n, require_metrics=self.require_metrics)
        if not p.ok:
            return p, f"GRM answer unparseable ({p.reason}); answer was {_short(reply.text)}"
        return p, None

    async def judge(self, instruction: str, source: Any, edited: Sequence[Any]) -> GRMParse:
        """Ask the judge about ``edited`` images directly (evaluation); returns the parsed answer."""
        reply = (await self.backend.agenerate([self.template.messages(instruction, source, list(edited))]))[0]
        p, why = self._parse(reply, len(edited))
        return p if p is not None else GRMParse(False, reason=why)

    # -- scoring --------------------------------------------------------------------------------
    async def acompute(self, batch: RewardBatch) -> RewardResult:
        n = len(batch)
        outputs = [None if o is None else as_pil(o, where=f"edited image of sample {i}")
                   for i, o in enumerate(batch.output_images(self.program_format))]
        sources = [None if s is None else as_pil(s, where=f"source image of sample {i}")
                   for i, s in enumerate(batch.source_images)]
        instr = batch.instructions
        scores: list[float | None] = [None] * n
        usable, reasons = usable_samples([(sources, "no source image"),
                                          (outputs, "no edited image (the completion's program did not parse)")])
        comps: dict[str, list[float | None]] = {}
        if self.mode == "pointwise":
            reqs = [self.template.messages(instr[i] or "", sources[i], [outputs[i]]) for i in usable]
            replies = await self.backend.agenerate(reqs)
            for i, rep in zip(usable, replies):
                p, why = self._parse(rep, 1)
                if why:
                    reasons[i] = why
                else:
                    scores[i] = p.scores[0] / SCORE_MAX  # type: ignore[union-attr]
        elif self.mode == "pairwise":
            targets = [None if t is None else as_pil(t, where=f"target image of sample {i}")
                       for i, t in enumerate(batch.target_images)]
            plan: list[tuple[int, bool]] = []  # (sample, output shown first)
            for i in list(usable):
                if targets[i] is None:
                    reasons[i] = "no reference (target) image for pairwise judging"
                    usable.remove(i)
                    continue
                first = self._rng("pair", i, batch.completions[i]).random() < 0.5
                plan += [(i, first)] if self.passes == 1 else [(i, True), (i, False)]
            reqs = [self.template.messages(instr[i] or "", sources[i],
                                           [outputs[i], targets[i]] if first else [targets[i], outputs[i]])
                    for i, first in plan]
            replies = await self.backend.agenerate(reqs)
            out_s: dict[int, list[float]] = {}
            ref_s: dict[int, list[float]] = {}
            wins: dict[int, list[float]] = {}
            for (i, first), rep in zip(plan, replies):
                p, why = self._parse(rep, 2)
                if why:
                    reasons[i] = why
                    continue
                so, sr = (p.scores if first else p.scores[::-1])  # type: ignore[index,union-attr]
                out_s.setdefault(i, []).append(so / SCORE_MAX)
                ref_s.setdefault(i, []).append(sr / SCORE_MAX)
                wins.setdefault(i, []).append(1.0 if so > sr else 0.5 if so == sr else 0.0)
            comps["score_output"] = [None] * n
            comps["score_reference"] = [None] * n
            for i, w in wins.items():
                if len(w) == self.passes:  # every pass answered
                    scores[i] = sum(w) / len(w)
                    reasons[i] = None
                    comps["score_output"][i] = sum(out_s[i]) / len(out_s[i])
                    comps["score_reference"][i] = sum(ref_s[i]) / len(ref_s[i])
        else:  # group
            gids = batch.group_ids()
            groups: dict[int, list[int]] = {}
            for i in usable:
                groups.setdefault(gids[i], []).append(i)
            plan_g = []
            for g, members in groups.items():
                order = list(members)
                self._rng("group", g, tuple(batch.completions[i] for i in members)).shuffle(order)
                plan_g.append(order)
            reqs = [self.template.messages(instr[o[0]] or "", sources[o[0]], [outputs[i] for i in o])
                    for o in plan_g]
            replies = await self.backend.agenerate(reqs)
            for order, rep in zip(plan_g, replies):
                p, why = self._parse(rep, len(order))
                for k, i in enumerate(order):
                    if why:
                        reasons[i] = why
                    else:
                        scores[i] = p.scores[k] / SCORE_MAX  # type: ignore[index,union-attr]
        bad = [(i, r) for i, r in enumerate(reasons) if scores[i] is None and r]
        if bad:
            logger.warning("GRM %s (%s): %d/%d samples unscored; first: #%d %s", self.name, self.mode, len(bad), n,
                           bad[0][0], bad[0][1])
        return RewardResult(scores, comps, reasons)
