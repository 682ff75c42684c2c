"""Speed of the policy-text parser: ordinary completions and hostile text, against the parser before it was
made linear (loaded from git history into the same process).

Run: ``python benchmarks/parser.py [--rounds 15] [--hostile-chars 19000] [--check 2000] [--baseline REV:PATH]``.

* Ordinary completions (50-400 characters, every format, 5% cut off): ms per 1000 parses, each text's best
  of ``--rounds``, the two parsers alternating text by text so that load from other processes hits both
  alike; ratio = new / baseline (<= 1 means no slower).
* Hostile text: repeated unclosed tags, brackets, quotes, think blocks; time at n and 10n characters for the
  new parser, and its work ratio t(10n) / t(ten parses of n): ~1 for linear time, ~10 for quadratic (equal
  work keeps both timings equally exposed to a loaded machine); the baseline at n only.
* ``--check N``: N random programs rendered in every format plus cut, mutated and wrapped variants, parsed
  by both parsers in every mode; any result that differs is printed (JSON nested deeper than the new
  parser's bound of 200 levels is the one intended difference).

The baseline defaults to ``rlkit/ops/text.py`` as of the commit before it was renamed to ``parser.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from rlkit.ops import PARAM_SPECS, EditProgram, ParseResult, parse_program, render_program

ROOT = Path(__file__).resolve().parent.parent
REASONS = ["The photo is underexposed; lift the midtones and add a little contrast.",
           "Warm the skin tones and recover the sky.", "Keep the {natural} look, just brighter.",
           "Shadows are crushed. I first thought exposure=+0.3, but the sky needs less.",
           "Subject is dark against a bright window: raise shadows, pull highlights, add clarity.", ""]
HOSTILE = {
    "unclosed <answer>": lambda k: "<answer>" * k,
    "think blocks + program": lambda k: "<think></think>" * k + "{exposure=+0.5}",
    "</think><answer> pairs": lambda k: "<think>" + "</think><answer>" * k,
    "unclosed {": lambda k: "{" * k,
    "nested objects": lambda k: '{"a":' * k + "1" + "}" * k,
    "spaces after a fence": lambda k: "Plan.\n```json" + " " * k + "x",
    "unknown JSON keys": lambda k: "{" + ", ".join(f'"k{i:07d}": 1' for i in range(k)) + "}",
    "name=value ops": lambda k: "exposure=1;" * k,
}
Parse = Callable[..., ParseResult]


def load_baseline(spec: str | None) -> ModuleType:
    """The parser module at ``REV:PATH`` in this repository, imported as part of ``rlkit.ops``."""
    if spec is None:
        renamed = subprocess.run(["git", "rev-list", "-1", "HEAD", "--", "rlkit/ops/text.py"], cwd=ROOT,
                                 capture_output=True, text=True, check=True).stdout.strip()
        if not renamed:
            raise SystemExit("benchmarks/parser.py: no rlkit/ops/text.py in this history; pass --baseline REV:PATH")
        spec = f"{renamed}^:rlkit/ops/text.py"
    source = subprocess.run(["git", "show", spec], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp()) / "baseline_parser.py"
    path.write_text(source)
    mspec = importlib.util.spec_from_file_location("rlkit.ops._baseline_parser", path)
    module = importlib.util.module_from_spec(mspec)
    sys.modules[mspec.name] = module
    mspec.loader.exec_module(module)
    print(f"baseline: {spec}")
    return module


def random_program(rng: random.Random) -> EditProgram:
    names = rng.sample(sorted(PARAM_SPECS), rng.randint(1, 6))
    d: dict = {n: round(rng.uniform(PARAM_SPECS[n].lo, PARAM_SPECS[n].hi), rng.choice([0, 1, 2])) for n in names}
    if rng.random() < 0.2:
        d["tone_curve"] = {"master": [[0, 0], [128, rng.randint(110, 150)], [255, 255]]}
    if rng.random() < 0.15:
        d["local"] = [{"mask": {"type": "radial", "cx": 0.5, "cy": 0.4, "rx": 0.2, "ry": 0.3},
                       "params": {"exposure": round(rng.uniform(-1, 1), 2)}}]
    return EditProgram.from_dict(d, clamp=True)  # clamp: a value rounded just past its range


def ordinary(n: int, seed: int = 0) -> dict[str, list[str]]:
    """Typical policy completions per format (a few cut off at a token limit)."""
    rng = random.Random(seed)
    out: dict[str, list[str]] = {"jarvis": [], "retouchiq": [], "json": [], "think+retouchiq": []}
    for _ in range(n):
        p, why = random_program(rng), rng.choice(REASONS)
        texts = {"jarvis": render_program(p, "jarvis", reasoning=why), "retouchiq": render_program(p, "retouchiq",
                 reasoning=why), "json": render_program(p, "json", reasoning=why),
                 "think+retouchiq": f"<think>{why}</think>\n" + render_program(p, "retouchiq")}
        for k, t in texts.items():
            out[k].append(t[: rng.randint(len(t) // 2, len(t))] if rng.random() < 0.05 else t)
    return out


def best_per_text(parsers: dict[str, Parse], texts: list[str], mode: str, rounds: int) -> dict[str, float]:
    """Sum over texts of each parser's best time on that text: the parsers alternate text by text (order
    swapped every round), so a burst of load from other processes hits both alike and best-of drops it."""
    best = {name: [float("inf")] * len(texts) for name in parsers}
    names = list(parsers)
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for i, text in enumerate(texts):
            for name in order:
                t0 = time.perf_counter()
                parsers[name](text, mode)
                dt = time.perf_counter() - t0
                if dt < best[name][i]:
                    best[name][i] = dt
    return {name: sum(b) for name, b in best.items()}


def bench_ordinary(old: Parse, rounds: int) -> None:
    groups = ordinary(250)
    print(f"\nordinary completions ({sum(map(len, groups.values()))} texts), ms per 1000 parses "
          f"(each text's best of {rounds})")
    print(f"{'format':16s} {'mode':9s} {'chars':>6s} {'baseline':>9s} {'new':>9s} {'new/base':>9s}")
    total = {"old": 0.0, "new": 0.0}
    for name, texts in groups.items():
        for mode in ("auto", name.split("+")[-1]):
            best = best_per_text({"old": old, "new": parse_program}, texts, mode, rounds)
            per = {k: v / len(texts) * 1e6 for k, v in best.items()}
            total["old"] += best["old"]
            total["new"] += best["new"]
            chars = sum(map(len, texts)) / len(texts)
            print(f"{name:16s} {mode:9s} {chars:6.0f} {per['old']:9.1f} {per['new']:9.1f} "
                  f"{per['new'] / per['old']:9.2f}")
    print(f"{'all':16s} {'':9s} {'':6s} {'':9s} {'':9s} {total['new'] / total['old']:9.2f}")


def bench_hostile(old: Parse, chars: int) -> None:
    print(f"\nhostile text, n = {chars} characters; ms, best of 3 (the baseline at n only: it is quadratic);")
    print("work ratio = time of one parse of 10n / time of ten parses of n: ~1 for linear time, ~10 for quadratic")
    print(f"{'text':24s} {'mode':9s} {'base n':>9s} {'new n':>8s} {'new 10n':>8s} {'work ratio':>10s}")
    for name, make in HOSTILE.items():
        k = chars // (len(make(2)) - len(make(1)))
        small, large = make(k), make(10 * k)
        for mode in ("auto", "jarvis", "retouchiq", "json"):
            t = {"old": min(_time(old, small, mode) for _ in range(3))}
            t["new"] = min(_time(parse_program, small, mode) for _ in range(3))
            t["new x10"] = min(_time(parse_program, small, mode, 10) for _ in range(3))
            t["new10"] = min(_time(parse_program, large, mode) for _ in range(3))
            print(f"{name:24s} {mode:9s} {t['old'] * 1e3:9.1f} {t['new'] * 1e3:8.1f} {t['new10'] * 1e3:8.1f} "
                  f"{t['new10'] / t['new x10']:10.2f}")


def _time(fn: Parse, text: str, mode: str, times: int = 1) -> float:
    t0 = time.perf_counter()
    for _ in range(times):
        fn(text, mode)
    return time.perf_counter() - t0


def _result(fn: Parse, text: str, mode: str, clamp: bool) -> tuple:
    r = fn(text, mode, clamp=clamp)
    program = None if r.program is None else json.dumps(r.program.to_dict(), sort_keys=True)
    return (r.ok, program, r.format, r.reasoning, [(p.position, p.reason) for p in r.problems],
            [str(n) for n in r.notes])


def check(old: Parse, n: int) -> int:
    """Parse a generated corpus with both parsers in every mode; print and count the results that differ."""
    rng = random.Random(1)
    alphabet = "{}[]<>\"':;,=+-.eE0123456789 \n\tabcxyz_/\\`é"
    tags = ["<think>", "</think>", "<answer>", "</answer>", "```", "```json\n", "{", "}", "[", "]", '"', "=", ";"]

    def mutate(s: str) -> str:
        chars = list(s)
        for _ in range(rng.randint(1, 6)):
            i = rng.randint(0, len(chars))
            op = rng.random()
            if op < 0.35:
                chars[i:i] = list(rng.choice(tags) if op < 0.15 else rng.choice(alphabet))
            elif op < 0.7 and chars:
                del chars[min(i, len(chars) - 1)]
            elif chars:
                j = rng.randint(0, len(chars))
                chars[i:i] = chars[min(i, j):max(i, j)]
        return "".join(chars)

    texts = []
    for _ in range(n):
        p, why = random_program(rng), rng.choice(REASONS + ["<think>x</think>", "```json\n{}\n```", "a=1 {b}"])
        for fmt in ("jarvis", "retouchiq", "json"):
            t = render_program(p, fmt, reasoning=why)
            texts += [t, t[: rng.randint(0, len(t))], mutate(t), mutate(mutate(t)), t + rng.choice(["}", " x", "\n"])]
            if fmt != "jarvis":
                texts += [f"<think>{why}</think>\n" + render_program(p, fmt), f"{why}\n```json\n{t}\n```",
                          "<think></think> " * rng.randint(1, 4) + t]
    for k in (1, 3, 40, 300):
        for unit in tags + ['{"a":', "{a=", "a=", "\\", '\\"', " ", '{"a":"}","b":']:
            texts += [unit * k, unit * k + "{exposure=+0.5}", unit * k + '{"exposure": 0.5}']
    differ = 0
    for i, text in enumerate(texts):
        for mode in ("auto", "jarvis", "retouchiq", "json"):
            for clamp in (False, True):
                a, b = _result(old, text, mode, clamp), _result(parse_program, text, mode, clamp)
                if a != b:
                    differ += 1
                    if differ <= 10:
                        print(f"differs: {text[:80]!r} {mode} clamp={clamp}\n  baseline {a}\n  new      {b}")
        if i % 2000 == 0:
            print(f"  checked {i}/{len(texts)} texts", flush=True)
    print(f"\n{len(texts) * 8} parses compared, {differ} differ")
    return differ


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--hostile-chars", type=int, default=19_000)
    ap.add_argument("--check", type=int, default=0, metavar="N", help="compare results on N random programs")
    ap.add_argument("--baseline", default=None, metavar="REV:PATH")
    args = ap.parse_args()
    old = load_baseline(args.baseline).parse_program
    bench_ordinary(old, args.rounds)
    if args.hostile_chars:
        bench_hostile(old, args.hostile_chars)
    if args.check:
        check(old, args.check)


if __name__ == "__main__":
    main()
