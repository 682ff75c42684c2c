"""RetouchIQ Fig. 5 in shape: GRM pair accuracy (lines) and the policy trained with each GRM (bars).

Rows come from the PGRT run's ``fig5_report`` stage: for each GRM variant (untrained, perturbation-only,
PGRT after each round) its accuracy on held-out perturbed pairs and on held-out policy pairs, and the
held-out scores of the policy trained with it (L1 distance to the expert edit, and a judge's score when one
is configured). Written as ``fig5.md``, ``fig5.json`` and ``fig5.png``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt

__all__ = ["write_fig5", "fig5_markdown"]

matplotlib.use("Agg")  # figures are written to files; no display is needed (or present on a training node)


def _acc(entry: Mapping[str, Any] | None, mode: str = "pair") -> float | None:
    """Accuracy of one mode (``pair`` or ``pointwise``) from ``{"pair": {...}, "pointwise": {...}}``."""
    return None if not entry or not entry.get(mode) else entry[mode].get("accuracy")


def _fmt(x: float | None, spec: str = ".3f") -> str:
    return "n/a" if x is None else format(x, spec)


def fig5_markdown(rows: Sequence[Mapping[str, Any]], refs: Mapping[str, Any]) -> str:
    """The Fig. 5 table as markdown (accuracy counts ties and unparseable answers as wrong)."""
    lines = ["| GRM | acc. perturbed pairs (pair prompt / pointwise) | acc. policy pairs (pair prompt / pointwise) "
             "| answers parsed (pert. pair / pointwise) | policy L1 x100 (lower is better) | policy judge (0-10) "
             "| policy edits parsed |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        p, q, pol = r.get("acc_perturbed") or {}, r.get("acc_policy") or {}, r.get("policy") or {}
        l1 = pol.get("l1")
        n_p = (p.get("pair") or {}).get("pairs", 0)
        n_q = (q.get("pair") or {}).get("pairs", 0)
        lines.append(f"| {r['grm']} | {_fmt(_acc(p))} / {_fmt(_acc(p, 'pointwise'))} (n={n_p}) | "
                     f"{_fmt(_acc(q))} / {_fmt(_acc(q, 'pointwise'))} (n={n_q}) | "
                     f"{_fmt((p.get('pair') or {}).get('parsed'), '.2f')} / "
                     f"{_fmt((p.get('pointwise') or {}).get('parsed'), '.2f')} | "
                     f"{_fmt(None if l1 is None else 100 * l1, '.2f')} | {_fmt(pol.get('judge'), '.2f')} | "
                     f"{_fmt(pol.get('parsed'), '.2f')} |")
    sft = refs.get("policy_sft") or {}
    ident = refs.get("identity_l1")
    lines += ["", "References on the same held-out split: "
              f"SFT policy (no RL) L1 x100 = {_fmt(None if sft.get('l1') is None else 100 * sft['l1'], '.2f')}; "
              f"no edit (source vs expert) L1 x100 = {_fmt(None if ident is None else 100 * ident, '.2f')}. "
              "Pair prompt: each pair is judged in both orders, so a judge that always prefers one position scores "
              "0.500. Pointwise: each edit is scored alone and the scores compared. Ties and unparseable answers "
              "count as wrong."]
    return "\n".join(lines) + "\n"


def write_fig5(out_dir: str | Path, rows: Sequence[Mapping[str, Any]], refs: Mapping[str, Any]) -> list[Path]:
    """Write ``fig5.md``, ``fig5.json`` and ``fig5.png`` into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md, js, png = out / "fig5.md", out / "fig5.json", out / "fig5.png"
    md.write_text("# RetouchIQ Fig. 5 (reproduced in shape)\n\n" + fig5_markdown(rows, refs), encoding="utf-8")
    js.write_text(json.dumps({"rows": list(rows), "references": dict(refs)}, indent=1, default=str),
                  encoding="utf-8")

    names = [str(r["grm"]) for r in rows]
    xs = list(range(len(names)))
    l1 = [((r.get("policy") or {}).get("l1") or 0.0) * 100 for r in rows]
    fig, ax = plt.subplots(figsize=(max(6.5, 1.3 * len(names) + 2), 5), dpi=120)
    bars = ax.bar(xs, l1, color="#c9d6e8", edgecolor="#5a6f8c", width=0.55, label="policy L1 to expert x100")
    for b, v in zip(bars, l1):
        ax.annotate(f"{v:.2f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom", fontsize=8)
    sft = (refs.get("policy_sft") or {}).get("l1")
    if sft is not None:
        ax.axhline(100 * sft, color="#5a6f8c", ls=":", lw=1, label="SFT policy L1 x100")
    ax.set_ylabel("policy L1 to expert x100 (bars; lower is better)")
    ax.set_xticks(xs, names)
    ax2 = ax.twinx()
    for key, color, label in (("acc_perturbed", "tab:blue", "GRM acc. on perturbed pairs"),
                              ("acc_policy", "tab:red", "GRM acc. on policy pairs")):
        for mode, style in (("pair", "-"), ("pointwise", ":")):
            ys = [_acc(r.get(key), mode) for r in rows]
            pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
            if pts:
                ax2.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=color, ls=style, lw=2,
                         label=f"{label} ({'pair prompt' if mode == 'pair' else 'pointwise'})")
    ax2.axhline(0.5, color="grey", ls="--", lw=0.8)
    ax2.set_ylim(0, 1.05)
    ax2.set_ylabel("GRM pair accuracy (lines)")
    handles = ax.get_legend_handles_labels()
    handles2 = ax2.get_legend_handles_labels()
    ax2.legend(handles[0] + handles2[0], handles[1] + handles2[1], loc="upper center", bbox_to_anchor=(0.5, -0.1),
               ncol=2, fontsize=7, frameon=False)
    ax.set_title("GRM accuracy and the policy trained with it (RetouchIQ Fig. 5 shape)", fontsize=9)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return [md, js, png]
