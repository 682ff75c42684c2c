"""What every rlkit environment shares: data rows -> episodes, action parsing, batched execution, scoring.

A *row* is a mapping with ``image`` (PIL, array, tensor, file path or bundled photo name; alias
``photo``), optional ``instruction``, ``target_image`` (alias ``target``), ``source_image`` (alias
``source``: the pre-edit original in editing refinement) and any other columns, which are handed
to the reward unchanged. An *action* is policy text (parsed with :func:`rlkit.ops.parse_program`,
never evaluated), an :class:`rlkit.ops.EditProgram`, or a program dict (canonical or Lightroom keys).
"""

from __future__ import annotations

import hashlib
import string
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from rlkit.envs._images import ImageInputError, load_images, resize, to_uint8_hwc
from rlkit.ops import EditProgram, ParseResult, ProgramError, apply_program, parse_program
from rlkit.rewards import Reward, RewardBatch, RewardResult, Rollout

__all__ = [
    "TEXT_CHARSET",
    "Action",
    "EnvConfigError",
    "Observation",
    "Episode",
    "ParsedAction",
    "Scored",
    "apply_programs",
    "as_text_observation",
    "episode_batch",
    "episode_from_row",
    "episodes_from_rows",
    "observe",
    "parse_action",
    "row_for_reset",
    "score_episodes",
    "text_image_spaces",
]

#: Characters the observation/action Text spaces accept: printable ASCII plus Latin-1 letters and symbols.
TEXT_CHARSET: str = "".join(dict.fromkeys(string.printable + "".join(chr(c) for c in range(0xA0, 0x180))))
_CHARSET = frozenset(TEXT_CHARSET)

_ROW_ALIASES = {
    "image": ("image", "photo", "images"),
    "target_image": ("target_image", "target"),
    "source_image": ("source_image", "source"),
}
_ROLE_KEYS = {alias for names in _ROW_ALIASES.values() for alias in names} | {"instruction"}

#: what a policy sends: text (parsed, never evaluated), an EditProgram or a program dict
Action = str | EditProgram | Mapping[str, object]
#: one environment's observation: ``image`` (and ``source``) uint8 (H, W, 3) arrays, ``instruction`` text
Observation = dict[str, np.ndarray | str]


class EnvConfigError(ValueError):
    """An environment was built or reset with invalid arguments or a malformed data row."""


def as_text_observation(text: str, max_length: int) -> str:
    """Fit ``text`` into the Text space: NFKC-normalise, replace characters outside the charset, cut."""
    text = unicodedata.normalize("NFKC", text)
    out = "".join(c if c in _CHARSET else ("?" if not c.isspace() else " ") for c in text)
    return out[:max_length]


@dataclass
class Episode:
    """State of one episode: the row, its images as (3, H, W) float tensors, steps and applied programs."""

    row: Mapping[str, object]
    instruction: str
    initial: torch.Tensor
    source: torch.Tensor
    target: torch.Tensor | None
    current: torch.Tensor
    seed: int
    row_index: int | None = None
    original_size: tuple[int, int] | None = None
    steps: int = 0
    done: bool = False
    programs: list[EditProgram] = field(default_factory=list)
    completions: list[str] = field(default_factory=list)
    last_score: float | None = None

    def extra_columns(self) -> dict[str, object]:
        """Row columns other than the image/instruction roles (passed to rewards as dataset columns)."""
        return {k: v for k, v in self.row.items() if k not in _ROLE_KEYS}


def _pick(row: Mapping[str, object], role: str) -> object:
    for key in _ROW_ALIASES[role]:
        if key in row and row[key] is not None:
            value = row[key]
            if key == "images":  # trl's list-of-images column: the first is the photo
                if not isinstance(value, (list, tuple)) or not value:
                    raise EnvConfigError("row column 'images' must be a non-empty list of images")
                value = value[0]
            return value
    return None


def episode_from_row(
    row: Mapping[str, object], image_size: tuple[int, int], *, seed: int, row_index: int | None = None
) -> Episode:
    """Load a row's images at ``image_size`` = (H, W); a clear EnvConfigError names a bad column."""
    return episodes_from_rows([row], image_size, seeds=[seed], row_indices=[row_index])[0]


def episodes_from_rows(
    rows: Sequence[Mapping[str, object]], image_size: tuple[int, int], *, seeds: Sequence[int],
    row_indices: Sequence[int | None] | None = None,
) -> list[Episode]:
    """:func:`episode_from_row` for many rows, their images converted together (``load_images``); a clear
    EnvConfigError names a bad column and, for several rows, which row."""
    n = len(rows)
    if len(seeds) != n or (row_indices is not None and len(row_indices) != n):
        raise EnvConfigError(f"episodes_from_rows: {n} rows, {len(seeds)} seeds and "
                             f"{n if row_indices is None else len(row_indices)} row indices")
    values: list[object] = []
    names: list[str] = []
    slots: list[tuple[int, str]] = []
    instructions: list[str] = []
    for i, row in enumerate(rows):
        where = f" of row {i}" if n > 1 else ""
        if not isinstance(row, Mapping):
            raise EnvConfigError(f"a data row{where} must be a mapping of columns, got {type(row).__name__}")
        image = _pick(row, "image")
        if image is None:
            raise EnvConfigError(f"data row{where} has no 'image' (or 'photo') column; columns: {sorted(row)}")
        instruction = row.get("instruction", "")
        if instruction is None:
            instruction = ""
        if not isinstance(instruction, str):
            raise EnvConfigError(f"row column 'instruction'{where} must be a string, got "
                                 f"{type(instruction).__name__}")
        instructions.append(instruction)
        for role, value in (("image", image), ("source_image", _pick(row, "source_image")),
                            ("target_image", _pick(row, "target_image"))):
            if value is not None:
                values.append(value)
                names.append(f"row column '{role}'{where}")
                slots.append((i, role))
    images: list[dict[str, torch.Tensor]] = [{} for _ in range(n)]
    try:
        for (i, role), t in zip(slots, load_images(values, names)):  # type: ignore[arg-type]
            images[i][role] = t if role == "image" else resize(t, image_size)
    except ImageInputError as exc:
        raise EnvConfigError(str(exc)) from exc
    episodes = []
    for i, row in enumerate(rows):
        loaded = images[i]["image"]
        initial = resize(loaded, image_size)
        episodes.append(Episode(
            row=dict(row),
            instruction=instructions[i],
            initial=initial,
            source=images[i].get("source_image", initial),
            target=images[i].get("target_image"),
            current=initial.clone(),
            seed=int(seeds[i]),
            row_index=None if row_indices is None else row_indices[i],
            original_size=(int(loaded.shape[-2]), int(loaded.shape[-1])),
        ))
    return episodes


@dataclass
class ParsedAction:
    """A parsed action: the program to apply (or None), whether it is valid, whether the policy finished."""

    text: str
    program: EditProgram | None
    valid: bool
    finished: bool
    problems: list[dict[str, Any]]
    format: str | None = None
    reasoning: str | None = None
    parse: ParseResult | None = None

    def rollout(self, output_image: torch.Tensor | None) -> Rollout:
        """The rollout rewards read: this action's text and parse, and the image it left (parsed once)."""
        return Rollout(self.text, parse=self.parse, program=self.program if self.valid else None,
                       output_image=output_image, rendered=True)

    def info(self) -> dict[str, Any]:
        program = self.program
        return {
            "valid": self.valid,
            "finished": self.finished,
            "parse_problems": list(self.problems),
            "format": self.format,
            "reasoning": self.reasoning,
            "program": program,
            "program_dict": program.to_dict() if program is not None else {},
        }


_THINK_TAGS = ("<think>", "</think>")


def _only_reasoning(text: str) -> bool:
    """True when ``text`` holds nothing but whitespace and <think>...</think> blocks."""
    rest = text
    while "<think>" in rest:
        start = rest.index("<think>")
        end = rest.find("</think>", start)
        if end < 0:
            return False
        rest = rest[:start] + rest[end + len("</think>") :]
    return not rest.strip()


def _rejected(reason: str, fmt: str | None) -> ParsedAction:
    """An invalid non-text action (a bad program dict or a value of the wrong type)."""
    return ParsedAction(text="", program=None, valid=False, finished=False,
                        problems=[{"position": None, "reason": reason}], format=fmt)


def parse_action(
    action: object,
    *,
    fmt: str = "auto",
    finish_token: str | None = "<finish>",
    clamp: bool = False,
    strict: bool = True,
) -> ParsedAction:
    """Turn an action into a program without ever raising on policy text (bad input is an invalid action).

    With ``strict`` (default) text whose envelope is malformed is invalid even when the parser could recover
    a program from it; with ``strict=False`` a recovered program is executed and the problems are reported.
    """
    if isinstance(action, EditProgram):
        return ParsedAction(
            text="", program=action, valid=True, finished=False, problems=[], format="program"
        )
    if isinstance(action, Mapping):
        try:
            program = EditProgram.from_dict(dict(action), clamp=clamp)
        except (ProgramError, TypeError, ValueError) as exc:
            return _rejected(str(exc), "dict")
        return ParsedAction(text="", program=program, valid=True, finished=False, problems=[], format="dict")
    if not isinstance(action, str):
        return _rejected(f"action must be policy text, an EditProgram or a program dict, got {type(action).__name__}",
                         None)
    text = action
    finished = bool(finish_token) and finish_token in text
    body = text.replace(finish_token, "") if finished else text
    if finished and _only_reasoning(body):
        return ParsedAction(text=text, program=None, valid=True, finished=True, problems=[], format="finish")
    result = parse_program(body, fmt, clamp=clamp)
    problems = [{"position": p.position, "reason": p.reason} for p in result.problems]
    valid = result.program is not None and (result.ok or not strict)
    if not valid and not problems:
        problems = [{"position": None, "reason": "no edit program found in the text"}]
    return ParsedAction(text=text, program=result.program if valid else None, valid=valid, finished=finished,
                        problems=problems, format=result.format, reasoning=result.reasoning, parse=result)


def _batch_seed(episodes: Sequence[Episode]) -> int:
    key = ",".join(f"{e.seed}:{e.steps}" for e in episodes).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=4).digest(), "little")


def apply_programs(
    episodes: Sequence[Episode], programs: Sequence[EditProgram], device: str | torch.device = "cpu"
) -> list[str | None]:
    """Run the engine once over all episodes' current images (one batched call); returns an error per episode.

    The current image of each episode is replaced by the edited one. If the batched call fails (an op
    rejects a program at execution time), each program is retried alone so one bad program cannot
    fail the others; its error string is returned and its image left unchanged.
    """
    if not episodes:
        return []
    images = torch.stack([e.current for e in episodes]).to(device)
    try:
        out = apply_program(images, list(programs), seed=_batch_seed(episodes)).detach().to("cpu")
    except (ValueError, RuntimeError, TypeError) as exc:
        if len(episodes) == 1:
            return [f"the engine could not execute the program: {exc}"]
        return [apply_programs([e], [p], device)[0] for e, p in zip(episodes, programs)]
    finite = torch.isfinite(out).flatten(1).all(1).tolist()  # one pass for the batch
    out = out.clamp_(0.0, 1.0)
    errors: list[str | None] = []
    for e, ok, result in zip(episodes, finite, out):
        if not ok:
            errors.append("the engine produced non-finite pixels; the edit was not applied")
            continue
        e.current = result
        errors.append(None)
    return errors


@dataclass
class Scored:
    """One episode's reward: the scalar (None = reward did not apply), components and the reward's reason."""

    score: float | None
    components: dict[str, float | None]
    reason: str | None


def score_episodes(
    reward: Reward | Callable[[RewardBatch], RewardResult] | None,
    episodes: Sequence[Episode],
    actions: Sequence[ParsedAction | str],
) -> list[Scored]:
    """Score each episode's current image with one call of ``reward`` on a :class:`rlkit.rewards.RewardBatch`.

    Each sample's rollout is the action's text and parse (made once, by :func:`parse_action`) with the
    episode's current image as the edited image; a plain string action is parsed by the batch if a reward
    asks. Columns: ``image`` / ``source_image`` (the source), ``output_image`` (the current image),
    ``target_image`` (when every row has one), ``instruction`` and the rows' other columns; images are
    (3, H, W) float tensors in [0, 1] at the environment's size.
    """
    if reward is None or not episodes:
        return [Scored(None, {}, None) for _ in episodes]
    if len(actions) != len(episodes):
        raise EnvConfigError(f"score_episodes: {len(actions)} actions for {len(episodes)} episodes")
    rollouts = [a.rollout(e.current) if isinstance(a, ParsedAction)
                else Rollout(a, output_image=e.current, rendered=True) for e, a in zip(episodes, actions)]
    result = reward(episode_batch(episodes, rollouts))
    if not isinstance(result, RewardResult):
        result = RewardResult(list(result))
    if len(result.scores) != len(episodes):
        raise EnvConfigError(f"the reward returned {len(result.scores)} scores for {len(episodes)} episodes")
    out = []
    for i in range(len(episodes)):
        s = result.scores[i]
        comps = {
            name: (None if vals[i] is None else float(vals[i])) for name, vals in result.components.items()
        }
        reason = result.reasons[i] if i < len(result.reasons) else None
        out.append(Scored(None if s is None else float(s), comps, reason))
    return out


def episode_batch(episodes: Sequence[Episode], rollouts: Sequence[Rollout]) -> RewardBatch:
    """The reward batch of ``episodes``: their ``rollouts`` (parse and edited image made by the environment),
    the source/target images at the environment's size, the instruction and the rows' other columns."""
    columns: dict[str, list[object]] = {
        "source_image": [e.source for e in episodes],
        "output_image": [e.current for e in episodes],
        "instruction": [e.instruction for e in episodes],
    }
    if all(e.target is not None for e in episodes):
        columns["target_image"] = [e.target for e in episodes]
    extras = [e.extra_columns() for e in episodes]
    for k in sorted(set.intersection(*(set(x) for x in extras)) - set(columns)):
        columns[k] = [x[k] for x in extras]
    return RewardBatch([r.text for r in rollouts], [e.instruction for e in episodes], columns, rollouts=rollouts)


def observation_arrays(e: Episode) -> dict[str, np.ndarray]:
    """uint8 (H, W, 3) arrays of the current and source images."""
    return {"image": to_uint8_hwc(e.current), "source": to_uint8_hwc(e.source)}


def text_image_spaces(image_size: tuple[int, int], max_text_length: int, include_source: bool
                      ) -> tuple[spaces.Dict, spaces.Text]:
    """The observation space (``image``, ``instruction``, optional ``source``) and the text action space."""
    h, w = image_size
    parts: dict[str, spaces.Space] = {
        "image": spaces.Box(0, 255, (h, w, 3), dtype=np.uint8),
        "instruction": spaces.Text(max_text_length, min_length=0, charset=TEXT_CHARSET),
    }
    if include_source:
        parts["source"] = spaces.Box(0, 255, (h, w, 3), dtype=np.uint8)
    return spaces.Dict(parts), spaces.Text(max_text_length, min_length=0, charset=TEXT_CHARSET)


def observe(e: Episode, max_text_length: int, include_source: bool) -> Observation:
    """The observation of ``e`` in :func:`text_image_spaces`."""
    arrays = observation_arrays(e)
    obs: Observation = {"image": arrays["image"], "instruction": as_text_observation(e.instruction, max_text_length)}
    if include_source:
        obs["source"] = arrays["source"]
    return obs


def row_for_reset(options: Mapping[str, Any] | None, dataset: Sequence[Mapping[str, object]] | None,
                  rng: np.random.Generator) -> tuple[Mapping[str, object], int | None]:
    """The row a ``reset(options=...)`` asks for: ``{"row": row}``, ``{"index": i}`` into ``dataset``, or a row
    drawn with ``rng``; also its dataset index (None for a given row)."""
    options = dict(options or {})
    unknown = set(options) - {"row", "index"}
    if unknown:
        raise EnvConfigError(f"reset options accept 'row' or 'index', got unknown keys {sorted(unknown)}")
    if "row" in options:
        return options["row"], None
    if dataset is None:
        raise EnvConfigError("reset needs options={'row': {...}} (or a dataset given to the environment)")
    if "index" in options:
        i = int(options["index"])
        if not 0 <= i < len(dataset):
            raise EnvConfigError(f"reset index {i} is out of range for a dataset of {len(dataset)} rows")
    else:
        i = int(rng.integers(len(dataset)))
    return dataset[i], i
