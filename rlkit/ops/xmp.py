"""Adobe XMP sidecars / presets (``crs:`` namespace) <-> :class:`EditProgram`.

Export writes Lightroom develop keys as ``crs:`` attributes, tone curves as ``rdf:Seq`` of ``"x, y"``, local
adjustments as ``crs:MaskGroupBasedCorrections`` and a profile as ``crs:Look`` with its ``crs:Table_*`` data.
White balance is written as Lightroom applies it to the file type: absolute ``Temperature`` / ``Tint`` for raw
files (``raw=True``; relative to ``as_shot`` when given, else to 5500 K / tint 0, noted), incremental
``IncrementalTemperature`` / ``IncrementalTint`` for rendered files (JPEG, PNG, TIFF). What Lightroom cannot
represent (tensor masks, rlkit's brush / range-mask fields, ``LocalVibrance``) is still written, so rlkit reads
it back, and is listed in :attr:`XmpExport.unsupported`.

Import renders what rlkit models (:mod:`rlkit.ops.lightroom_keys`), lists bookkeeping keys and settings at
their neutral values in :attr:`XmpImport.ignored`, settings that change pixels but are not modelled in
:attr:`XmpImport.unsupported`, and says in :attr:`XmpImport.warnings` what it assumed or could not render.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ProgramError
from .lightroom import _LOCAL_FROM_LR, program_to_lightroom
from .lightroom_keys import LEGACY_PV2010, TABLE_KEY, WHITE_BALANCE_KEYS, is_bookkeeping, is_neutral
from .params import CURVE_LIGHTROOM, KELVIN_REFERENCE, canonical_name, incremental_to_kelvin
from .program import ClampNote, EditProgram

__all__ = ["XmpExport", "XmpImport", "export_xmp", "import_xmp", "to_xmp", "from_xmp", "NO_XMP_EQUIVALENT"]

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "crs": "http://ns.adobe.com/camera-raw-settings/1.0/",
}
for _p, _u in NS.items():
    ET.register_namespace(_p, _u)

#: features that have no Lightroom XMP equivalent (exported as rlkit extensions Lightroom ignores)
NO_XMP_EQUIVALENT = (
    "tensor masks (Mask/Image with a pixel array)",
    "brush masks as disks (Mask/Paint with rlkit 'Dabs' of \"x y r\")",
    "luminance / colour range masks in rlkit's form (Mask/RangeMask Type/LumRange/Hue/Width)",
    "nested mask groups (Mask/Group)",
    "local vibrance (LocalVibrance)",
    "the grain seed (Lightroom grain is not seeded)",
)

_C = "{" + NS["crs"] + "}"
_R = "{" + NS["rdf"] + "}"
_X = "{" + NS["x"] + "}"


@dataclass(frozen=True)
class XmpExport:
    """An exported sidecar: the XML text and what Lightroom will not understand."""

    text: str
    unsupported: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class XmpImport:
    """An imported sidecar: the program; ``ignored``: keys that do not change pixels (bookkeeping, settings at
    their neutral value); ``unsupported``: settings that change pixels in Lightroom but not in rlkit; ``clamped``:
    values clamped into range; ``warnings``: what was assumed or could not be rendered, one line each (a
    profile whose tables are missing, white balance without as-shot values, the unsupported settings)."""

    program: EditProgram
    ignored: list[str] = field(default_factory=list)
    clamped: list[ClampNote] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _short(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _fmt(v: object) -> str:
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _fill(desc: ET.Element, d: dict[str, Any]) -> None:
    for k, v in d.items():
        if isinstance(v, list):
            el = ET.SubElement(desc, _C + k)
            seq = ET.SubElement(el, _R + "Seq")
            for item in v:
                li = ET.SubElement(seq, _R + "li")
                if isinstance(item, dict):
                    _fill(ET.SubElement(li, _R + "Description"), item)
                elif isinstance(item, list):
                    li.text = json.dumps(item)
                else:
                    li.text = _fmt(item)
        elif isinstance(v, dict):
            _fill(ET.SubElement(ET.SubElement(desc, _C + k), _R + "Description"), v)
        else:
            desc.set(_C + k, _fmt(v))


def _white_balance(d: dict[str, Any], raw: bool, as_shot: tuple[float, float] | None,
                   unsupported: list[str]) -> None:
    """Rewrite the incremental white-balance keys of ``d`` into what Lightroom applies to the file type."""
    temp, tint = d.pop("IncrementalTemperature", 0.0), d.pop("IncrementalTint", 0.0)
    if not raw:
        if temp or tint:
            d.update({"WhiteBalance": "Custom", "IncrementalTemperature": temp, "IncrementalTint": tint})
        return
    if as_shot is None:
        if temp or tint:
            unsupported.append(f"raw white balance written relative to an assumed as-shot {KELVIN_REFERENCE:g} K, "
                               "tint 0 (pass as_shot=(kelvin, tint) for the photo's own values)")
        shot_k, shot_t = KELVIN_REFERENCE, 0.0
    else:
        shot_k, shot_t = float(as_shot[0]), float(as_shot[1])
    if not (temp or tint):
        d["WhiteBalance"] = "As Shot"
        return
    d.update({"WhiteBalance": "Custom", "Temperature": round(incremental_to_kelvin(temp, shot_k)),
              "Tint": round(shot_t + tint, 2)})


def export_xmp(program: EditProgram, path: str | Path | None = None, *, preset_name: str | None = None,
               raw: bool = False, as_shot: tuple[float, float] | None = None) -> XmpExport:
    """Render a program as an XMP sidecar (or a preset when ``preset_name`` is given); optionally write it.

    ``raw``: the sidecar is for a raw file, so white balance is written as absolute ``Temperature`` (K) and
    ``Tint``, relative to ``as_shot`` = (kelvin, tint) of the photo; otherwise (JPEG, PNG, TIFF) as
    ``IncrementalTemperature`` / ``IncrementalTint``, which Lightroom applies only to rendered files.
    """
    if not isinstance(program, EditProgram):
        raise TypeError(f"export_xmp: expected an EditProgram, got {type(program).__name__}")
    unsupported: list[str] = []
    d = program_to_lightroom(program, unsupported)
    _white_balance(d, raw, as_shot, unsupported)
    for ch, lr in CURVE_LIGHTROOM.items():
        if lr in d:
            d[lr] = [f"{_short(x)}, {_short(y)}" for x, y in program.curves[ch]]
    for g in d.get("MaskGroupBasedCorrections", []):
        if "LocalVibrance" in g:
            unsupported.append("local vibrance (LocalVibrance)")
        for m in _mask_tree(g["CorrectionMasks"]):
            what = m.get("What")
            if what == "Mask/Paint":
                unsupported.append("brush mask disks (rlkit Mask/Paint Dabs)")
            elif what == "Mask/RangeMask":
                unsupported.append("range mask (rlkit Mask/RangeMask fields)")
            elif what == "Mask/Group":
                unsupported.append("nested mask group (rlkit Mask/Group)")
            if what == "Mask/Image":
                m["Data"] = json.dumps(m["Data"])
    root = ET.Element(_X + "xmpmeta", {_X + "xmptk": "rlkit"})
    rdf = ET.SubElement(root, _R + "RDF")
    desc = ET.SubElement(rdf, _R + "Description", {_R + "about": ""})
    head: dict[str, Any] = {"Version": "15.0", "ProcessVersion": "11.0", "HasSettings": True}
    if preset_name:
        head.update({"PresetType": "Normal", "Name": preset_name})
    _fill(desc, {**head, **d})
    ET.indent(root)
    text = ET.tostring(root, encoding="unicode")
    out = XmpExport(text, sorted(set(unsupported)))
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return out


def to_xmp(program: EditProgram, *, preset_name: str | None = None, raw: bool = False,
           as_shot: tuple[float, float] | None = None) -> str:
    """XMP text for a program (see :func:`export_xmp` for white balance and the list of unsupported features)."""
    return export_xmp(program, preset_name=preset_name, raw=raw, as_shot=as_shot).text


def _value(s: str) -> bool | float | str:
    t = s.strip()
    if t in ("True", "False"):
        return t == "True"
    try:
        v = float(t)
        return v if math.isfinite(v) else t
    except ValueError:
        return t


def _read(desc: ET.Element) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for k, v in desc.attrib.items():
        if k.startswith(_C):
            d[k[len(_C):]] = _value(v)
    for child in desc:
        if not child.tag.startswith(_C):
            continue
        key = child.tag[len(_C):]
        container = next((c for c in child if c.tag in (_R + "Seq", _R + "Bag", _R + "Alt")), None)
        if container is not None:
            items: list[Any] = []
            for li in container:
                sub = li.find(_R + "Description")
                if sub is not None:
                    items.append(_read(sub))
                elif any(a.startswith(_C) for a in li.attrib) or len(li):
                    items.append(_read(li))
                else:
                    items.append((li.text or "").strip())
            d[key] = items
        else:
            sub = child.find(_R + "Description")
            d[key] = _read(sub) if sub is not None else _value(child.text or "")
    return d


_CORR_KEEP = {"what", "correctionamount", "correctionmasks"}
_MASK_KEYS = {"What", "Top", "Left", "Bottom", "Right", "Angle", "Feather", "Flipped", "ZeroX", "ZeroY", "FullX",
              "FullY", "Dabs", "Pixels", "Invert", "Type", "LumRange", "Hue", "Width", "Data", "Masks",
              "MaskBlendMode", "MaskInverted"}


def _mask_tree(entries: object) -> list[dict]:
    """Every mask entry of a ``CorrectionMasks`` list, including those nested in ``Mask/Group`` ``Masks``."""
    out: list[dict] = []
    stack = list(entries) if isinstance(entries, list) else []
    while stack:
        m = stack.pop()
        if isinstance(m, dict):
            out.append(m)
            if isinstance(m.get("Masks"), list):
                stack.extend(m["Masks"])
    return out


def import_xmp(source: str | Path) -> XmpImport:
    """Read an XMP sidecar / preset (a path or the XML text): the program, and what was ignored, not modelled,
    clamped or assumed (see :class:`XmpImport`)."""
    text = source
    if isinstance(source, Path) or (isinstance(source, str) and "<" not in source):
        p = Path(source)
        if not p.exists():
            raise FileNotFoundError(f"import_xmp: no such file: {p}")
        text = p.read_text(encoding="utf-8")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise ProgramError(f"XMP: not well-formed XML ({e})") from None
    # the settings may be split over several top-level rdf:Description elements (XMP allows it): merge them
    rdf = root if root.tag == _R + "RDF" else root.find(".//" + _R + "RDF")
    descs = [el for el in (rdf.findall(_R + "Description") if rdf is not None else root.iter(_R + "Description"))
             if any(k.startswith(_C) for k in el.attrib) or any(c.tag.startswith(_C) for c in el)]
    if not descs:
        raise ProgramError("XMP: no rdf:Description with crs: (Camera Raw settings) found")
    raw: dict[str, Any] = {}
    for desc in descs:
        raw.update(_read(desc))
    return _import_settings(raw)


def _import_settings(raw: dict[str, Any]) -> XmpImport:
    """Sort the merged ``crs:`` settings into what is rendered, ignored and unsupported, and build the program."""
    ignored: list[str] = []
    unsupported: list[str] = []
    d: dict[str, Any] = {}
    curve_keys = set(CURVE_LIGHTROOM.values())
    pv = raw.get("ProcessVersion", 11.0)
    legacy_in_effect = isinstance(pv, float) and pv < 6.7
    for k, v in raw.items():
        if k in curve_keys or k in WHITE_BALANCE_KEYS or k in ("Look", "Treatment", "ConvertToGrayscale") \
                or TABLE_KEY.fullmatch(k):
            d[k] = v
        elif k == "MaskGroupBasedCorrections" and isinstance(v, list):
            d[k] = _corrections(v, ignored, unsupported)
        elif k in LEGACY_PV2010:
            (unsupported if legacy_in_effect and not is_neutral(k, v) else ignored).append(k)
        elif canonical_name(k) is not None and isinstance(v, (int, float)) and not isinstance(v, bool):
            d[k] = v
        elif is_bookkeeping(k, v) or is_neutral(k, v):
            ignored.append(k)
        else:
            unsupported.append(f"{k}={_describe(v)}")
    notes: list[ClampNote] = []
    warnings: list[str] = []
    resolved: list[str] = []  # what white balance / the profile could not render
    program = EditProgram.from_dict(d, clamp=True, notes=notes, warnings=warnings, unsupported=resolved)
    if unsupported:
        warnings.append(f"{len(unsupported)} Lightroom setting(s) that change pixels are not modelled and were not "
                        f"applied: {', '.join(unsupported)}")
    warnings += resolved
    return XmpImport(program, ignored, notes, unsupported + resolved, warnings)


def _describe(v: object) -> str:
    """A short form of a setting's value for a report line."""
    if isinstance(v, list):
        return f"[{len(v)} items]"
    if isinstance(v, dict):
        return "{...}"
    text = str(v)
    return text if len(text) <= 40 else text[:37] + "..."


#: keys of a local correction group, and of its masks, that never change pixels
_CORR_BOOKKEEPING = {"correctionactive", "correctionname", "correctionsyncid", "maskversion", "correctionid",
                     "correctionreferencex", "correctionreferencey", "maskgroupname"}


def _corrections(groups: list, ignored: list[str], unsupported: list[str]) -> list[dict]:
    """The local correction groups rlkit renders, with the other keys sorted into ``ignored`` / ``unsupported``."""
    out = []
    for gi, g in enumerate(groups):
        if not isinstance(g, dict):
            continue
        where = f"MaskGroupBasedCorrections[{gi}]"
        if str(g.get("CorrectionActive", True)).strip().lower() in ("false", "0"):
            ignored.append(f"{where} (switched off)")
            continue
        keep = {}
        for gk, gv in g.items():
            low = gk.lower()
            if low in _CORR_KEEP or low in _LOCAL_FROM_LR:
                keep[gk] = gv
            elif low in _CORR_BOOKKEEPING or (isinstance(gv, (int, float)) and not isinstance(gv, bool) and gv == 0):
                ignored.append(f"{where}.{gk}")
            else:
                unsupported.append(f"{where}.{gk}={_describe(gv)}")
        for m in _mask_tree(keep.get("CorrectionMasks")):
            for mk in [mk for mk in m if mk not in _MASK_KEYS]:
                m.pop(mk)
            if m.get("What") == "Mask/Image" and isinstance(m.get("Data"), str):
                try:
                    m["Data"] = json.loads(m["Data"])
                except ValueError:
                    raise ProgramError(f"XMP: {where}: Mask/Image 'Data' is not a JSON array of mask values") from None
        out.append(keep)
    return out


def from_xmp(source: str | Path) -> EditProgram:
    """The program stored in an XMP sidecar / preset (path or XML text)."""
    return import_xmp(source).program
