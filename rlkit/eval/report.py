"""Reports: ``results.json`` (every per-sample record), ``report.md`` (the papers' table shapes, best per column
in bold and second best underlined), a PNG grid of outputs and a bar chart of the main metrics."""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image, ImageDraw, ImageFont

matplotlib.use("Agg")  # charts are written to files; no display is needed (or present on a training node)

__all__ = ["Column", "mean_of", "summarize", "markdown_table", "write_results", "read_results", "save_grid",
           "save_bar_chart", "RETOUCHEVAL_COLUMNS", "FIVEK_COLUMNS", "retouch_report"]


@dataclass(frozen=True)
class Column:
    """A table column: record key, header, and which direction is better (None: not ranked)."""

    key: str
    label: str
    higher_better: bool | None = True
    fmt: str = "{:.2f}"


RETOUCHEVAL_COLUMNS = (Column("l1", "L1 ↓", False), Column("l2", "L2 ↓", False), Column("sc", "SC ↑"),
                       Column("pq", "PQ ↑"), Column("o", "O ↑"))
FIVEK_COLUMNS = (Column("ssim", "SSIM ↑", True, "{:.4f}"), Column("lpips", "LPIPS ↓", False, "{:.4f}"),
                 Column("psnr", "PSNR ↑", True, "{:.2f}"))


def _finite(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def mean_of(records: Sequence[dict[str, Any]], key: str) -> float | None:
    """Mean of ``key`` over records where it is a finite number (None if there are none)."""
    vals = [float(r[key]) for r in records if _finite(r.get(key))]
    return float(np.mean(vals)) if vals else None


def summarize(records: Sequence[dict[str, Any]], keys: Sequence[str], *, group: str = "split"
              ) -> dict[str, dict[str, dict[str, Any]]]:
    """``{system: {group value (and "all"): {key: mean, "n": count, "valid": rate, "judge_failures": k}}}``."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    systems = list(dict.fromkeys(r["system"] for r in records))
    for s in systems:
        rs = [r for r in records if r["system"] == s]
        groups = list(dict.fromkeys(r.get(group, "all") for r in rs))
        out[s] = {}
        for g in [*groups, "all"] if len(groups) > 1 else groups:
            sub = rs if g == "all" else [r for r in rs if r.get(group, "all") == g]
            row: dict[str, Any] = {k: mean_of(sub, k) for k in keys}
            row["n"] = len(sub)
            if any("valid" in r for r in sub):
                row["valid"] = sum(bool(r.get("valid")) for r in sub) / len(sub)
            if any("judge_errors" in r for r in sub):
                row["judge_failures"] = sum(1 for r in sub if r.get("judge_errors"))
            out[s][g] = row
    return out


def _rank_marks(values: list[float | None], higher_better: bool | None) -> list[str]:
    """'best' / 'second' / '' per value (ties share a mark)."""
    if higher_better is None:
        return [""] * len(values)
    finite = sorted({v for v in values if v is not None and math.isfinite(v)}, reverse=higher_better)
    marks = []
    for v in values:
        if v is None or not finite:
            marks.append("")
        elif v == finite[0]:
            marks.append("best")
        elif len(finite) > 1 and v == finite[1]:
            marks.append("second")
        else:
            marks.append("")
    return marks


def markdown_table(rows: Sequence[tuple[str, dict[str, Any]]], columns: Sequence[Column], *,
                   groups: Sequence[str] | None = None, first: str = "system") -> str:
    """A markdown table: one row per (name, values); with ``groups``, the columns repeat per group and
    values are looked up as ``values[group][key]``. Best per column **bold**, second <u>underlined</u>."""
    heads = [first]
    cells: list[list[str]] = [[name] for name, _ in rows]
    for g in groups or [None]:
        for c in columns:
            heads.append(f"{g} {c.label}" if g is not None else c.label)
            vals = [(v.get(g, {}) if g is not None else v).get(c.key) for _, v in rows]
            vals = [None if not _finite(x) else float(x) for x in vals]
            for k, (v, m) in enumerate(zip(vals, _rank_marks(vals, c.higher_better))):
                t = "–" if v is None else c.fmt.format(v)
                cells[k].append(f"**{t}**" if m == "best" else f"<u>{t}</u>" if m == "second" else t)
    lines = ["| " + " | ".join(heads) + " |", "|" + "|".join(["---"] * len(heads)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join(lines)


def _clean(v: object) -> object:
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def write_results(out_dir: str | Path, suite: str, records: Sequence[dict[str, Any]], summary: dict[str, Any],
                  meta: dict[str, Any] | None = None) -> Path:
    """``results.json``: suite, meta (systems, settings, notes), summary, and every per-sample record."""
    path = Path(out_dir) / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"suite": suite, "meta": meta or {}, "summary": summary, "records": list(records)}
    path.write_text(json.dumps(_clean(body), indent=1), encoding="utf-8")
    return path


def read_results(path: str | Path) -> dict[str, Any]:
    """A results.json (or the folder holding one)."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    if not p.is_file():
        raise FileNotFoundError(f"no results.json at {p}")
    return json.loads(p.read_text(encoding="utf-8"))


def _font(size: int = 10) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def save_grid(path: str | Path, rows: Sequence[tuple[str, Sequence[tuple[str, Image.Image, str]]]], *,
              tile: int = 160) -> Path:
    """A PNG grid: one row per (row title, [(column title, image, caption)]); captions wrapped under images."""
    font = _font(10)
    cap_lines = 7
    line_h = 12
    cell_w, cell_h = tile + 8, tile + 16 + cap_lines * line_h
    ncol = max(len(cols) for _, cols in rows)
    canvas = Image.new("RGB", (ncol * cell_w + 8, len(rows) * (cell_h + 18) + 8), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (title, cols) in enumerate(rows):
        y0 = 4 + r * (cell_h + 18)
        draw.text((6, y0), title, fill="black", font=_font(12))
        for c, (head, img, caption) in enumerate(cols):
            x0 = 4 + c * cell_w
            im = img.convert("RGB")
            scale = tile / max(im.size)
            im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.BICUBIC)
            draw.text((x0 + 2, y0 + 16), head[:28], fill=(40, 40, 160), font=font)
            canvas.paste(im, (x0, y0 + 30))
            lines = [ln for part in caption.splitlines() for ln in (textwrap.wrap(part, 30) or [""])]
            for k, ln in enumerate(lines[:cap_lines]):
                draw.text((x0 + 2, y0 + 32 + tile + k * line_h), ln, fill="black", font=font)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path


def save_bar_chart(path: str | Path, summary: dict[str, dict[str, Any]], metrics: Sequence[Column], *,
                   title: str = "") -> Path:
    """Grouped bars: one panel per metric, one bar per system (its mean over all samples)."""
    systems = list(summary)
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.2), squeeze=False)
    for ax, c in zip(axes[0], metrics):
        vals = [summary[s].get(c.key) for s in systems]
        ax.bar(range(len(systems)), [v if _finite(v) else 0.0 for v in vals], color="tab:blue")
        for k, v in enumerate(vals):
            ax.text(k, v if _finite(v) else 0.0, "–" if not _finite(v) else c.fmt.format(v), ha="center",
                    va="bottom", fontsize=7)
        ax.set_xticks(range(len(systems)), systems, rotation=35, ha="right", fontsize=8)
        ax.set_title(c.label, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def retouch_report(out_dir: str | Path, suite: str, records: Sequence[dict[str, Any]],
                   columns: Sequence[Column], *, meta: dict[str, Any] | None = None,
                   grid_rows: Callable[[], list[tuple[str, list[tuple[str, Image.Image, str]]]]] | None = None,
                   notes: Sequence[str] = ()) -> dict[str, Path]:
    """results.json, report.md (one column group per split, then valid-program rate, improvement and judge
    failures), grid.png and bars.png for a retouching suite."""
    out = Path(out_dir)
    keys = [c.key for c in columns] + ["l1_input", "psnr_input"]
    summary = summarize(records, keys)
    systems = list(summary)
    splits = [g for g in next(iter(summary.values()))] if summary else []
    table_groups = [g for g in splits if g != "all"] or splits
    md = [f"# {suite}", ""]
    md += [f"- {n}" for n in notes]
    if notes:
        md.append("")
    md.append(markdown_table([(s, summary[s]) for s in systems], columns, groups=table_groups))
    extra_cols = [Column("valid", "valid programs ↑", True, "{:.0%}")]
    if "l1_input" in keys and any(_finite(r.get("l1_input")) for r in records):
        for s in systems:
            for v in summary[s].values():
                v["l1_gain"] = (v["l1_input"] - v["l1"]) if _finite(v.get("l1_input")) and _finite(v.get("l1")) else None
        extra_cols.append(Column("l1_gain", "L1 gain vs input ↑"))
    if any(_finite(r.get("psnr_input")) for r in records):
        for s in systems:
            for v in summary[s].values():
                v["psnr_gain"] = (v["psnr"] - v["psnr_input"]) if _finite(v.get("psnr")) and _finite(v.get("psnr_input")) else None
        extra_cols.append(Column("psnr_gain", "PSNR gain vs input ↑"))
    if any("judge_errors" in r for r in records):
        extra_cols.append(Column("judge_failures", "judge failures", None, "{:.0f}"))
    extra_cols.append(Column("n", "samples", None, "{:.0f}"))
    md += ["", markdown_table([(s, summary[s]) for s in systems], extra_cols, groups=table_groups)]
    files = {"results": write_results(out, suite, records, summary, meta)}
    if grid_rows is not None:
        files["grid"] = save_grid(out / "grid.png", grid_rows())
        md += ["", "![outputs](grid.png)"]
    overall = {s: summary[s].get("all", next(iter(summary[s].values()))) for s in systems}
    files["bars"] = save_bar_chart(out / "bars.png", overall, [c for c in columns if c.key != "sc" and c.key != "pq"]
                                   or columns, title=suite)
    md += ["", "![main metrics](bars.png)", ""]
    (out / "report.md").write_text("\n".join(md), encoding="utf-8")
    files["report"] = out / "report.md"
    return files
