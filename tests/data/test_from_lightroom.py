"""`rlkit data from-lightroom`: a folder of edited photos (sidecars written here as Lightroom writes them, and an
XMP packet embedded in a JPEG) becomes retouch records with a per-file report of what was not represented."""

import argparse
import json

import numpy as np
import pytest
import torch
from PIL import Image

from rlkit.data import RetouchRecord
from rlkit.data.cli import register
from rlkit.data.lightroom_folder import find_settings, load_before, records_from_lightroom
from rlkit.ops import EditProgram, apply_program, export_xmp, to_tensor

CRS = "http://ns.adobe.com/camera-raw-settings/1.0/"


def _sidecar(attrs: str) -> str:
    return ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            f'<rdf:Description rdf:about="" xmlns:crs="{CRS}" crs:Version="15.4" crs:ProcessVersion="11.0" '
            f'{attrs}/></rdf:RDF></x:xmpmeta>')


@pytest.fixture
def folder(tmp_path):
    g = np.random.default_rng(0)
    photos = tmp_path / "shoot"
    photos.mkdir()
    for name in ("a.jpg", "b.png", "c.tif", "d.jpg", "e.jpg"):
        arr = (g.random((24, 32, 3)) * 200 + 20).astype(np.uint8)
        Image.fromarray(arr).save(photos / name)
    # a: B&W with a gray mix; b: warming white balance against as-shot values; c: exposure + a lens profile
    (photos / "a.xmp").write_text(_sidecar('crs:ConvertToGrayscale="True" crs:GrayMixerBlue="-40"'))
    (photos / "b.xmp").write_text(_sidecar('crs:WhiteBalance="Custom" crs:Temperature="6900" crs:Tint="+5" '
                                           'crs:AsShotTemperature="5200" crs:AsShotTint="+5"'))
    export_xmp(EditProgram({"exposure": 0.5}), photos / "c.xmp")
    text = (photos / "c.xmp").read_text().replace('crs:HasSettings="True"',
                                                   'crs:HasSettings="True" crs:LensProfileEnable="1"')
    (photos / "c.xmp").write_text(text)
    # d: the settings embedded in the JPEG as an XMP packet (Lightroom's form for JPEGs); e: no settings at all
    jpeg = (photos / "d.jpg").read_bytes()
    packet = _sidecar('crs:Contrast2012="+40" crs:Vibrance="+20"').encode()
    app1 = b"http://ns.adobe.com/xap/1.0/\x00" + packet
    (photos / "d.jpg").write_bytes(jpeg[:2] + b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1 + jpeg[2:])
    return photos


def test_folder_becomes_records_with_a_report_per_file(folder):
    res = records_from_lightroom(folder)
    by_id = {r.id: r for r in res.records}
    assert sorted(by_id) == ["a.jpg", "b.png", "c.tif", "d.jpg"]
    reports = {r.photo.name: r for r in res.reports}
    assert not reports["e.jpg"].ok and "no Lightroom settings" in reports["e.jpg"].error
    assert reports["d.jpg"].settings == "embedded XMP" and reports["a.jpg"].settings == "sidecar a.xmp"
    assert by_id["d.jpg"].program == EditProgram({"contrast": 40, "vibrance": 20})
    assert reports["c.tif"].unsupported == ["LensProfileEnable=1.0"] and reports["c.tif"].warnings
    rec = by_id["a.jpg"]
    assert isinstance(rec, RetouchRecord) and rec.instructions == [""]
    after = np.asarray(rec.after).astype(int)
    assert np.abs(after[..., 0] - after[..., 2]).max() <= 1  # B&W: grey (8-bit rounding)
    warm = by_id["b.png"]
    assert "tint" not in warm.program.params and warm.program.params["temperature"] > 0  # Tint == AsShotTint
    before, after = to_tensor(warm.before), to_tensor(warm.after)
    assert (after[:, 0].mean() / after[:, 2].mean()) > (before[:, 0].mean() / before[:, 2].mean())  # warmer
    # "after" is exactly the engine's rendering of the imported program
    assert torch.equal(to_tensor(rec.after), torch.round(apply_program(to_tensor(rec.before), rec.program) * 255) / 255)


def test_size_and_sidecar_lookup(folder):
    res = records_from_lightroom(folder, size=12)
    assert all(min(r.before.size) == 12 for r in res.records)
    assert find_settings(folder / "e.jpg") is None
    raw = folder / "x.dng"
    raw.write_bytes(b"not a raw file")
    try:
        import rawpy  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="raw files need rawpy"):
            load_before(raw)


def test_cli_from_lightroom_writes_dataset_report_and_preview(folder, tmp_path, capsys):
    datasets = pytest.importorskip("datasets")
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    out = tmp_path / "out"
    args = parser.parse_args(["data", "from-lightroom", str(folder), "--out", str(out)])
    assert args.func(args) == 0
    ds = datasets.load_from_disk(str(out / "dataset"))
    assert len(ds) == 4 and set(ds["instruction"]) == {""}
    assert EditProgram.from_dict(json.loads(ds[ds["id"].index("d.jpg")]["program"])) == \
        EditProgram({"contrast": 40, "vibrance": 20})
    report = json.loads((out / "report.json").read_text())
    assert {r["photo"].split("/")[-1] for r in report if r["error"]} == {"e.jpg"}
    assert (out / "preview.png").exists()
    err = capsys.readouterr().err
    assert "WARNING" in err and "LensProfileEnable" in err
    args = parser.parse_args(["data", "from-lightroom", str(folder), "--out", str(out)])
    assert args.func(args) == 2  # not empty: refuses without --overwrite
