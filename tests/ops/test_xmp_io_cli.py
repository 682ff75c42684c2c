"""XMP round trip and import of a Lightroom-style sidecar, image conversions, and the ops/retouch CLI."""

import argparse

import numpy as np
import pytest
import torch
from PIL import Image

from rlkit.cli_retouch import register as register_retouch
from rlkit.ops import (
    EditProgram,
    ProgramError,
    apply_program,
    export_xmp,
    from_xmp,
    import_xmp,
    to_pil,
    to_tensor,
    to_xmp,
)
from rlkit.ops.cli import ops_table, register

# Written the way Lightroom Classic writes a sidecar (attributes in crs:, curves as rdf:Seq of "x, y",
# plus settings rlkit does not model).
LIGHTROOM_SIDECAR = """<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="Adobe XMP Core 7.0-c000">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/"
    crs:Version="15.4" crs:ProcessVersion="11.0" crs:WhiteBalance="Custom"
    crs:IncrementalTemperature="+12" crs:IncrementalTint="-4" crs:Exposure2012="+0.35"
    crs:Contrast2012="+18" crs:Highlights2012="-40" crs:Shadows2012="+25" crs:Vibrance="+10"
    crs:HueAdjustmentOrange="-6" crs:LensProfileEnable="1" crs:AutoLateralCA="0"
    crs:PostCropVignetteAmount="-15" crs:HasSettings="True">
   <crs:ToneCurvePV2012>
    <rdf:Seq>
     <rdf:li>0, 0</rdf:li>
     <rdf:li>64, 58</rdf:li>
     <rdf:li>192, 200</rdf:li>
     <rdf:li>255, 255</rdf:li>
    </rdf:Seq>
   </crs:ToneCurvePV2012>
   <crs:MaskGroupBasedCorrections>
    <rdf:Seq>
     <rdf:li>
      <rdf:Description crs:What="Correction" crs:CorrectionAmount="1" crs:CorrectionActive="true"
        crs:LocalExposure2012="0.25" crs:LocalContrast2012="0" crs:LocalToningHue="0">
       <crs:CorrectionMasks>
        <rdf:Seq>
         <rdf:li crs:What="Mask/CircularGradient" crs:MaskValue="1" crs:Top="0.2" crs:Left="0.3"
           crs:Bottom="0.6" crs:Right="0.7" crs:Angle="0" crs:Midpoint="50" crs:Roundness="0"
           crs:Feather="75" crs:Flipped="false"/>
        </rdf:Seq>
       </crs:CorrectionMasks>
      </rdf:Description>
     </rdf:li>
    </rdf:Seq>
   </crs:MaskGroupBasedCorrections>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>"""


def test_import_lightroom_style_sidecar():
    imp = import_xmp(LIGHTROOM_SIDECAR)
    p = imp.program
    assert p.params == {"temperature": 12, "tint": -4, "exposure": 0.35, "contrast": 18, "highlights": -40,
                        "shadows": 25, "vibrance": 10, "hsl_hue_orange": -6, "vignette_amount": -15}
    assert p.curves["master"] == ((0, 0), (64, 58), (192, 200), (255, 255))
    la = p.local[0]
    assert la.params == {"exposure": 1.0}  # LocalExposure2012 0.25 x 4 EV
    assert (la.mask.cx, la.mask.cy, la.mask.rx, la.mask.ry, la.mask.feather) == (0.5, 0.4, 0.2, 0.2, 75)
    # AutoLateralCA="0" and a zero LocalToningHue change nothing; the lens profile does, and rlkit has none
    assert {"AutoLateralCA", "Version", "HasSettings", "MaskGroupBasedCorrections[0].LocalToningHue"} <= \
        set(imp.ignored)
    assert imp.unsupported == ["LensProfileEnable=1.0"] and "LensProfileEnable" in imp.warnings[0]


def test_xmp_round_trip_and_unsupported_report(tmp_path):
    p = EditProgram.from_dict({
        "exposure": 0.123456789, "grade_shadow_hue": 210, "grade_shadow_saturation": 30, "sharpening": 40,
        "tone_curve": {"blue": [[0, 5], [128.5, 120.25], [255, 250]]},
        "local": [
            {"mask": {"type": "linear", "x0": 0, "y0": 0, "x1": 0, "y1": 0.4, "invert": True},
             "params": {"temperature": -20, "vibrance": 15}},
            {"mask": {"type": "composite", "parts": [
                ["add", {"type": "brush", "disks": [[0.2, 0.3, 0.05], [0.25, 0.3, 0.05]], "feather": 30}],
                ["intersect", {"type": "tensor", "data": [[0.0, 1.0], [0.5, 1.0]]}]]},
             "params": {"noise_reduction": 40}},
        ]})
    exp = export_xmp(p, tmp_path / "a.xmp", preset_name="rlkit test")
    assert 'crs:Exposure2012="0.123456789"' in exp.text and 'crs:Name="rlkit test"' in exp.text
    assert any("tensor mask" in u for u in exp.unsupported)
    assert any("LocalVibrance" in u for u in exp.unsupported)
    assert any("brush" in u for u in exp.unsupported)
    back = from_xmp(tmp_path / "a.xmp")
    assert back.to_dict() == p.to_dict()
    assert from_xmp(to_xmp(EditProgram())).is_identity()
    img = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    assert torch.equal(apply_program(img, back), apply_program(img, p))


def test_xmp_errors():
    with pytest.raises(ProgramError, match="not well-formed"):
        import_xmp("<x:xmpmeta")
    with pytest.raises(ProgramError, match="no rdf:Description with crs:"):
        import_xmp('<r xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description/></r>')
    with pytest.raises(FileNotFoundError):
        import_xmp("/nonexistent/file.xmp")


def test_to_tensor_to_pil_round_trip():
    a = (np.arange(4 * 5 * 3) % 256).astype(np.uint8).reshape(4, 5, 3)
    t = to_tensor(Image.fromarray(a))
    assert t.shape == (1, 3, 4, 5) and t.dtype == torch.float32
    assert torch.allclose(t[0, :, 1, 2], torch.tensor(a[1, 2] / 255.0, dtype=torch.float32))
    assert np.array_equal(np.asarray(to_pil(t)[0]), a)
    assert to_tensor([Image.fromarray(a)] * 2).shape == (2, 3, 4, 5)
    assert to_tensor(np.stack([a, a])).shape == (2, 3, 4, 5)
    with pytest.raises(ValueError, match="share one size"):
        to_tensor([Image.fromarray(a), Image.fromarray(a[:2])])
    with pytest.raises(ValueError, match=r"in \[0,1\]"):
        to_tensor(np.full((2, 2, 3), 3.0))


def _run(argv):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    register(sub)
    register_retouch(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_ops_table(capsys):
    assert _run(["ops"]) == 0
    out = capsys.readouterr().out
    assert "exposure" in out and "Exposure2012" in out and "[-5, 5]" in out and "hsl_hue_magenta" in out
    assert len(ops_table("hsl")) == 24
    assert _run(["ops", "--group", "nope"]) == 2


def test_cli_retouch_file_and_bundled_photo(tmp_path, capsys):
    src = tmp_path / "in.png"
    Image.fromarray(np.full((16, 20, 3), 100, np.uint8)).save(src)
    out = tmp_path / "out.png"
    prog = ('{"exposure": 1, "local": [{"mask": {"type": "radial", "cx": 0.5, "cy": 0.5, "rx": 0.3, "ry": 0.3},'
            ' "params": {"exposure": 1}}]}')
    assert _run(["retouch", str(src), "--program", prog, "-o", str(out), "--show-masks",
                 "--xmp-out", str(tmp_path / "p.xmp")]) == 0
    res = np.asarray(Image.open(out))
    assert res.shape == (16, 20, 3) and res[8, 10, 0] > res[0, 0, 0] > 100
    assert (tmp_path / "out_masks.png").exists()
    assert _run(["retouch", str(src), "--xmp", str(tmp_path / "p.xmp"), "-o", str(tmp_path / "o2.png")]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o2.png")), res)
    assert _run(["retouch", str(src), "--program", "exposure=+9", "-o", str(out)]) == 2
    assert "[-5, 5]" in capsys.readouterr().err
    pytest.importorskip("skimage")
    assert _run(["retouch", "astronaut", "--program", "saturation=-100", "-o", str(tmp_path / "a.png")]) == 0
    a = np.asarray(Image.open(tmp_path / "a.png")).astype(int)
    assert a.shape == (512, 512, 3) and np.abs(a[..., 0] - a[..., 2]).max() <= 1


def _sidecar(attrs: str, body: str = "") -> str:
    return ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description rdf:about="" xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/" '
            f'{attrs}>{body}</rdf:Description></rdf:RDF></x:xmpmeta>')


def test_calibration_and_lens_keys_are_not_hsl_or_vignette():
    # Lightroom writes camera calibration (RedHue ... BlueSaturation, ShadowTint) and lens-correction vignetting
    # (VignetteAmount/Midpoint) into every sidecar; they share spellings with aliases of our HSL / vignette sliders
    imp = import_xmp(_sidecar(
        'crs:SaturationAdjustmentRed="-40" crs:HueAdjustmentBlue="+25" crs:PostCropVignetteAmount="-30" '
        'crs:VignetteAmount="0" crs:VignetteMidpoint="50" crs:ShadowTint="0" crs:RedHue="0" crs:RedSaturation="0" '
        'crs:GreenHue="0" crs:GreenSaturation="0" crs:BlueHue="0" crs:BlueSaturation="+15"'))
    assert imp.program == EditProgram({"hsl_saturation_red": -40, "hsl_hue_blue": 25, "vignette_amount": -30,
                                       "calibration_blue_saturation": 15})
    assert {"VignetteAmount", "VignetteMidpoint"} <= set(imp.ignored) and not imp.unsupported
    # our own snake_case aliases keep working; Lightroom's exact spelling is calibration
    assert EditProgram.from_dict({"red_hue": 10, "vignette_amount": -20}) == \
        EditProgram({"hsl_hue_red": 10, "vignette_amount": -20})
    assert EditProgram.from_dict({"BlueSaturation": 15}) == EditProgram({"calibration_blue_saturation": 15})
    with pytest.raises(ProgramError, match="'VignetteAmount' is a Lightroom lens-correction setting"):
        EditProgram.from_dict({"VignetteAmount": 15})


def test_numeric_blend_modes_and_lightroom_11_invert_flags():
    mask = ('<crs:MaskGroupBasedCorrections><rdf:Seq><rdf:li><rdf:Description crs:What="Correction" '
            'crs:CorrectionAmount="1" crs:LocalExposure2012="0.125"><crs:CorrectionMasks><rdf:Seq>'
            '<rdf:li crs:What="Mask/CircularGradient" crs:MaskBlendMode="0" crs:Top="0.2" crs:Left="0.2" '
            'crs:Bottom="0.8" crs:Right="0.8" crs:Angle="0" crs:Feather="50" crs:Flipped="false" '
            'crs:MaskInverted="true"/>'
            '<rdf:li crs:What="Mask/Gradient" crs:MaskBlendMode="2" crs:ZeroX="0" crs:ZeroY="0" crs:FullX="0" '
            'crs:FullY="0.5"/>'
            '</rdf:Seq></crs:CorrectionMasks></rdf:Description></rdf:li></rdf:Seq></crs:MaskGroupBasedCorrections>')
    la = import_xmp(_sidecar('crs:Exposure2012="+0.1"', mask)).program.local[0]
    assert la.params == {"exposure": 0.5}
    (op0, radial), (op1, linear) = la.mask.parts
    assert (op0, op1) == ("add", "subtract")  # "0" / "2" are read as numbers by the XMP reader
    assert radial.invert and not linear.invert  # MaskInverted="true" wins over Flipped="false"


def test_settings_split_over_several_descriptions_are_merged():
    text = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description rdf:about="" xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/" '
            'crs:Exposure2012="+0.5"/>'
            '<rdf:Description rdf:about="" xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/" '
            'crs:Contrast2012="+30"/></rdf:RDF></x:xmpmeta>')
    assert import_xmp(text).program == EditProgram({"exposure": 0.5, "contrast": 30})


def test_nested_tensor_mask_survives_our_own_xmp():
    from rlkit.ops import CompositeMask, LinearMask, LocalAdjustment, RadialMask, TensorMask

    tm = TensorMask(torch.tensor([[0.0, 0.5], [1.0, 0.25]]))
    inner = CompositeMask((("add", tm), ("intersect", LinearMask(0, 0, 1, 1))))
    p = EditProgram(local=[LocalAdjustment(CompositeMask((("add", RadialMask(0.5, 0.5, 0.2, 0.2)),
                                                            ("subtract", inner))), {"exposure": 0.5})])
    assert import_xmp(export_xmp(p).text).program == p
    assert TensorMask([[0.5]]) == TensorMask(torch.tensor([[0.5]])) != TensorMask([[0.5]], invert=True)


def test_lightroom_scaled_values_come_back_as_written():
    from rlkit.ops import LocalAdjustment, RadialMask, parse_program, render_program

    p = EditProgram(local=[LocalAdjustment(RadialMask(0.45, 0.3, 0.15, 0.7), {"contrast": 6.86, "exposure": 0.3})])
    assert parse_program(render_program(p, "jarvis")).program == p  # local values x 1/100 and x 1/4, then back
    assert import_xmp(to_xmp(p)).program == p
    third = EditProgram(local=[LocalAdjustment(RadialMask(1 / 3, 2 / 3, 0.1, 0.2), {"exposure": 0.5})])
    m = import_xmp(to_xmp(third)).program.local[0].mask
    assert m.cx == pytest.approx(1 / 3, rel=1e-12) and m.cy == pytest.approx(2 / 3, rel=1e-12)


def test_cli_retouch_unreadable_program_file(tmp_path, capsys):
    src = tmp_path / "in.png"
    Image.fromarray(np.full((4, 4, 3), 100, np.uint8)).save(src)
    missing = tmp_path / "nope.txt"
    assert _run(["retouch", str(src), "--program", f"@{missing}", "-o", str(tmp_path / "o.png")]) == 2
    assert f"cannot read the program file {missing}" in capsys.readouterr().err
