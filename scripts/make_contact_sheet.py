"""Make docs/images/engine_contact_sheet.png: every retouch op at - and + on a bundled photo.

Run: ``python scripts/make_contact_sheet.py [--photo astronaut] [--size 128] [-o docs/images/engine_contact_sheet.png]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from rlkit.data.photos import load_photo
from rlkit.ops import EditProgram, LinearMask, LocalAdjustment, RadialMask, apply_program, to_pil, to_tensor

S_CURVE = [(0, 0), (64, 44), (192, 212), (255, 255)]
FLAT_CURVE = [(0, 30), (128, 128), (255, 225)]

#: (label, program at "-", program at "+")
CELLS: list[tuple[str, EditProgram, EditProgram]] = []


def _pair(name: str, lo: float, hi: float, label: str | None = None) -> None:
    CELLS.append((label or name, EditProgram({name: lo}), EditProgram({name: hi})))


for _n in ("contrast", "highlights", "shadows", "whites", "blacks", "temperature", "tint", "vibrance", "saturation",
           "texture", "clarity", "dehaze", "vignette_amount"):
    _pair(_n, -80, 80)
_pair("exposure", -1.0, 1.0)
_pair("sharpening", 0, 150, "sharpening 0/150")
_pair("noise_reduction", 0, 100, "noise_reduction 0/100")
_pair("grain_amount", 0, 80, "grain 0/80")
for _n in ("hsl_hue_red", "hsl_saturation_orange", "hsl_luminance_orange", "hsl_saturation_blue", "hsl_hue_blue",
           "tone_darks", "tone_lights"):
    _pair(_n, -100, 100)
CELLS.append(("grade shadows teal / highlights warm",
              EditProgram({"grade_shadow_hue": 30, "grade_shadow_saturation": 60, "grade_highlight_hue": 210,
                           "grade_highlight_saturation": 60}),
              EditProgram({"grade_shadow_hue": 200, "grade_shadow_saturation": 60, "grade_highlight_hue": 40,
                           "grade_highlight_saturation": 60})))
CELLS.append(("point curve flat / S", EditProgram(curves={"master": FLAT_CURVE}),
              EditProgram(curves={"master": S_CURVE})))
CELLS.append(("B&W: gray mix blue -60 / +60", EditProgram({"monochrome": 1, "gray_mix_blue": -60}),
              EditProgram({"monochrome": 1, "gray_mix_blue": 60})))
_pair("calibration_red_hue", -100, 100)
_pair("calibration_blue_saturation", -100, 100)
_pair("calibration_shadow_tint", -100, 100)
CELLS.append(("vignette paint overlay -/+60", EditProgram({"vignette_amount": -60, "vignette_style": 3}),
              EditProgram({"vignette_amount": 60, "vignette_style": 3})))
_face = RadialMask(0.55, 0.3, 0.18, 0.22, feather=60)
CELLS.append(("local radial exposure -/+1", EditProgram(local=[LocalAdjustment(_face, {"exposure": -1})]),
              EditProgram(local=[LocalAdjustment(_face, {"exposure": 1})])))
_top = LinearMask(0.0, 0.6, 0.0, 0.0)
CELLS.append(("local linear temp -/+60", EditProgram(local=[LocalAdjustment(_top, {"temperature": -60})]),
              EditProgram(local=[LocalAdjustment(_top, {"temperature": 60})])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photo", default="astronaut")
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--cols", type=int, default=4, help="op pairs per row")
    ap.add_argument("-o", "--output", default="docs/images/engine_contact_sheet.png")
    args = ap.parse_args()
    img = load_photo(args.photo)
    s = args.size
    img = img.resize((s, round(s * img.height / img.width)), Image.LANCZOS)
    x = to_tensor(img)
    n = len(CELLS)
    batch = x.expand(2 * n, -1, -1, -1).contiguous()
    programs = [p for _, lo, hi in CELLS for p in (lo, hi)]
    out = to_pil(apply_program(batch, programs, seed=0))
    w, h = img.size
    label_h, pad = 14, 6
    cell_w, cell_h = 2 * w + pad, h + label_h + pad
    rows = (n + 1 + args.cols - 1) // args.cols
    sheet = Image.new("RGB", (args.cols * cell_w + pad, rows * cell_h + pad), "white")
    draw = ImageDraw.Draw(sheet)
    cells = [("original", img, img)] + [(lab, out[2 * i], out[2 * i + 1]) for i, (lab, _, _) in enumerate(CELLS)]
    for k, (lab, a, b) in enumerate(cells):
        cx, cy = pad + (k % args.cols) * cell_w, pad + (k // args.cols) * cell_h
        draw.text((cx, cy), lab if lab == "original" else f"{lab}  (- | +)", fill="black")
        sheet.paste(a, (cx, cy + label_h))
        if lab != "original":
            sheet.paste(b, (cx + w, cy + label_h))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.output, optimize=True)
    print(f"wrote {args.output} ({sheet.width}x{sheet.height}, {n} ops at - and +)")


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
