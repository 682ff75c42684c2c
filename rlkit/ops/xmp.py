"""Adobe XMP sidecars / presets (``crs:`` namespace) <-> :class:`EditProgram`.

Export writes Lightroom develop keys as ``crs:`` attributes, tone curves as ``rdf:Seq`` of ``"x, y"`` and local
adjustments as ``crs:MaskGroupBasedCorrections``. What Lightroom cannot represent (tensor masks, rlkit's
brush / range-mask fields, ``LocalVibrance``) is still written, so rlkit reads it back, and is listed in
:attr:`XmpExport.unsupported`. Import ignores (and lists) keys rlkit does not model.
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
from .params import CURVE_LIGHTROOM, canonical_name
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
    """An imported sidecar: the program, the keys rlkit ignored and the values it clamped into range."""

    program: EditProgram
    ignored: list[str] = field(default_factory=list)
    clamped: list[ClampNote] = field(default_factory=list)


def _short(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _fmt(v: Any) -> str:
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


def export_xmp(program: EditProgram, path: str | Path | None = None, *, preset_name: str | None = None) -> XmpExport:
    """Render a program as an XMP sidecar (or a preset when ``preset_name`` is given); optionally write it."""
    if not isinstance(program, EditProgram):
        raise TypeError(f"export_xmp: expected an EditProgram, got {type(program).__name__}")
    unsupported: list[str] = []
    d = program_to_lightroom(program, unsupported)
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


def to_xmp(program: EditProgram, *, preset_name: str | None = None) -> str:
    """XMP text for a program (see :func:`export_xmp` for the list of unsupported features)."""
    return export_xmp(program, preset_name=preset_name).text


def _value(s: str) -> Any:
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


def _mask_tree(entries: Any) -> list[dict]:
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
    """Read an XMP sidecar / preset (a path or the XML text); unknown keys are ignored and listed."""
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
    ignored: list[str] = []
    d: dict[str, Any] = {}
    curve_keys = set(CURVE_LIGHTROOM.values())
    for k, v in raw.items():
        if k in curve_keys:
            d[k] = v
        elif k == "MaskGroupBasedCorrections" and isinstance(v, list):
            groups = []
            for gi, g in enumerate(v):
                if not isinstance(g, dict):
                    continue
                keep = {}
                for gk, gv in g.items():
                    if gk.lower() in _CORR_KEEP or gk.lower() in _LOCAL_FROM_LR:
                        keep[gk] = gv
                    else:
                        ignored.append(f"MaskGroupBasedCorrections[{gi}].{gk}")
                for m in _mask_tree(keep.get("CorrectionMasks")):
                    for mk in [mk for mk in m if mk not in _MASK_KEYS]:
                        m.pop(mk)
                    if m.get("What") == "Mask/Image" and isinstance(m.get("Data"), str):
                        try:
                            m["Data"] = json.loads(m["Data"])
                        except ValueError:
                            raise ProgramError(f"XMP: MaskGroupBasedCorrections[{gi}]: Mask/Image 'Data' is not "
                                               "a JSON array of mask values") from None
                groups.append(keep)
            d[k] = groups
        elif canonical_name(k) is not None and isinstance(v, (int, float)) and not isinstance(v, bool):
            d[k] = v
        elif k not in ("Version", "ProcessVersion", "HasSettings", "PresetType", "Name"):
            ignored.append(k)
    notes: list[ClampNote] = []
    return XmpImport(EditProgram.from_dict(d, clamp=True, notes=notes), ignored, notes)


def from_xmp(source: str | Path) -> EditProgram:
    """The program stored in an XMP sidecar / preset (path or XML text)."""
    return import_xmp(source).program
