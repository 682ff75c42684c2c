"""A folder of photos edited in Lightroom -> rlkit retouch records (before, program, after, instruction to annotate).

Each photo (JPEG, PNG, TIFF; raw files through ``rawpy`` when it is installed) is paired with its develop
settings: the sidecar ``NAME.xmp`` next to it (Lightroom's form for raw files, and for any file when "write
to XMP" is on), or else the XMP packet Lightroom embeds in JPEG / TIFF / PNG files. The settings are imported
with :func:`rlkit.ops.import_xmp` (as :class:`~rlkit.ops.XmpImport`: program, ignored keys, unsupported
settings, warnings), the photo is decoded as the "before" image (raw files: rawpy's as-shot rendering), and the
"after" image is the engine's rendering of the program. Every file gets a :class:`FileReport` saying what could
not be represented; files that cannot be read are reported, not fatal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from rlkit.data.records import RetouchRecord
from rlkit.ops import EditProgram, ProgramError, XmpImport, apply_program, import_xmp, to_pil, to_tensor

__all__ = ["RENDERED_EXTENSIONS", "RAW_EXTENSIONS", "FileReport", "FolderImport", "records_from_lightroom",
           "find_settings", "load_before"]

RENDERED_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff"})
RAW_EXTENSIONS = frozenset({".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf",
                            ".rw2", ".rwl", ".pef", ".srw", ".3fr", ".erf", ".kdc", ".mrw", ".x3f", ".iiq", ".mos",
                            ".raw"})
_CRS = b"http://ns.adobe.com/camera-raw-settings/1.0/"
_MAX_SCAN = 64 << 20  # bytes of a file searched for an embedded XMP packet


@dataclass
class FileReport:
    """What happened to one photo: where its settings came from and what could not be represented."""

    photo: Path
    settings: str = ""  # "sidecar NAME.xmp", "embedded XMP", or "" when none was found
    record_id: str = ""  # the record made from it ("" when none)
    warnings: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        """True when the photo became a record."""
        return bool(self.record_id)


@dataclass
class FolderImport:
    """The records made from a folder, and one report per photo found."""

    records: list[RetouchRecord]
    reports: list[FileReport]


def find_settings(photo: Path) -> tuple[str, str] | None:
    """(source, XMP text) of a photo's develop settings: its ``.xmp`` sidecar, else the XMP packet embedded in the
    file with Camera Raw settings; None when it has neither."""
    for sidecar in (photo.with_suffix(".xmp"), photo.with_suffix(".XMP"), photo.with_name(photo.name + ".xmp")):
        if sidecar.is_file():
            return f"sidecar {sidecar.name}", sidecar.read_text(encoding="utf-8", errors="replace")
    if photo.suffix.lower() in RENDERED_EXTENSIONS:
        with photo.open("rb") as f:
            data = f.read(_MAX_SCAN)
        start = data.find(b"<x:xmpmeta")
        while start >= 0:  # one pass over the file: each packet is searched for its end once
            end = data.find(b"</x:xmpmeta>", start)
            if end < 0:
                break
            packet = data[start:end + len(b"</x:xmpmeta>")]
            if _CRS in packet:
                return "embedded XMP", packet.decode("utf-8", errors="replace")
            start = data.find(b"<x:xmpmeta", end)
    return None


def load_before(photo: Path) -> Image.Image:
    """The photo as RGB: rendered files as stored; raw files as rawpy renders them with the camera's white balance
    (sRGB, 8 bits, no automatic brightening), which is what an as-shot Lightroom edit starts from."""
    if photo.suffix.lower() in RAW_EXTENSIONS:
        try:
            import rawpy  # deferred: optional dependency for raw files only
        except ImportError:
            raise RuntimeError(f"{photo.name}: raw files need rawpy (pip install rawpy; the 'raw' extra of rlkit)") \
                from None
        with rawpy.imread(str(photo)) as raw:
            rgb = raw.postprocess(use_camera_wb=True, no_auto_bright=True, output_bps=8)
        return Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    with Image.open(photo) as im:
        return im.convert("RGB")


def _resize(img: Image.Image, size: int | None) -> Image.Image:
    if not size or min(img.size) <= size:
        return img
    scale = size / min(img.size)
    return img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.LANCZOS)


def records_from_lightroom(folder: str | Path, *, size: int | None = None, recursive: bool = False,
                           split: str = "train", on_file: Callable[[FileReport], None] | None = None
                           ) -> FolderImport:
    """Turn every photo with Lightroom settings under ``folder`` into a :class:`RetouchRecord`.

    ``size`` downsizes so the shorter side is at most ``size`` pixels (the program is resolution-independent);
    ``recursive`` also walks sub-folders; ``on_file`` is called with each report as it is made (progress).
    Records have an empty instruction (to annotate), the imported program, the photo as ``before`` and the
    engine's rendering as ``after``; photos without settings are reported and skipped.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"records_from_lightroom: {root} is not a folder")
    exts = RENDERED_EXTENSIONS | RAW_EXTENSIONS
    photos = sorted(p for p in (root.rglob("*") if recursive else root.iterdir())
                    if p.is_file() and p.suffix.lower() in exts)
    records: list[RetouchRecord] = []
    reports: list[FileReport] = []
    for photo in photos:
        report = FileReport(photo)
        try:
            found = find_settings(photo)
            if found is None:
                report.error = "no Lightroom settings (no .xmp sidecar, no embedded Camera Raw XMP)"
            else:
                report.settings, text = found
                imp: XmpImport = import_xmp(text)
                report.warnings, report.unsupported = list(imp.warnings), list(imp.unsupported)
                before = _resize(load_before(photo), size)
                after = _render(before, imp.program)
                rid = str(photo.relative_to(root))
                records.append(RetouchRecord(before, after, [""], imp.program, split=split, id=rid))
                report.record_id = rid
        except (OSError, ValueError, RuntimeError) as e:  # ProgramError is a ValueError: a bad file, not a crash
            report.error = f"{type(e).__name__ if not isinstance(e, ProgramError) else 'bad settings'}: {e}"
        reports.append(report)
        if on_file is not None:
            on_file(report)
    return FolderImport(records, reports)


def _render(before: Image.Image, program: EditProgram) -> Image.Image:
    return to_pil(apply_program(to_tensor(before), program))[0]
