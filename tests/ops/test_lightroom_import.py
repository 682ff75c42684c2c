"""Lightroom presets and sidecars as a photographer expects them (issue 19): B&W, white balance against the
as-shot values, profiles (tables decoded from hand-built bytes), calibration and the other new sliders, and the
split of skipped keys into bookkeeping and unsupported settings. XMP files are written here, in the form Lightroom
writes them, so each case is pinned down independently of rlkit's own exporter."""

import colorsys
import struct
import zlib

import numpy as np
import pytest
import torch
from skimage.color import rgb2xyz, xyz2rgb
from skimage.color.colorconv import xyz_from_rgb

from rlkit.ops import (
    PARAM_SPECS,
    EditProgram,
    ProgramError,
    apply_params,
    apply_program,
    export_xmp,
    import_xmp,
    parse_program,
    render_program,
)
from rlkit.ops.profiles import LookTable, Profile, RGBTable, decode_table, encode_table

CRS = "http://ns.adobe.com/camera-raw-settings/1.0/"


def _xmp(attrs: str, body: str = "") -> str:
    return ('<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="Adobe XMP Core 7.0"><rdf:RDF '
            'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
            f'xmlns:crs="{CRS}" crs:Version="15.4" crs:ProcessVersion="11.0" {attrs}>{body}</rdf:Description>'
            '</rdf:RDF></x:xmpmeta>')


def _luminance(t: torch.Tensor) -> np.ndarray:
    """Y of sRGB images (N,3,H,W) by scikit-image's own sRGB -> XYZ (an independent implementation)."""
    return rgb2xyz(t.double().numpy().transpose(0, 2, 3, 1))[..., 1]


def _grey(y: np.ndarray) -> np.ndarray:
    """The sRGB value of a grey of luminance Y, by scikit-image's XYZ -> sRGB (D65 white of its matrix)."""
    return xyz2rgb(np.asarray(y, dtype=np.float64)[..., None] * xyz_from_rgb.sum(axis=1))[..., 0]


@pytest.fixture
def colourful():
    return torch.rand(1, 3, 16, 20, generator=torch.Generator().manual_seed(3)) * 0.8 + 0.1


# ------------------------------------------------------------------------------------------------ B&W
def test_bw_preset_gives_grey_pixels_equal_to_luminance(colourful):
    imp = import_xmp(_xmp('crs:ConvertToGrayscale="True" crs:Treatment="Black &amp; White"'))
    assert imp.program.params == {"monochrome": 1.0} and not imp.warnings
    out = apply_program(colourful, imp.program).double().numpy()[0]
    assert np.abs(out[0] - out[1]).max() == 0 and np.abs(out[0] - out[2]).max() == 0  # grey, exactly
    # the Rec.709 luminance with no mixer (scikit-image's matrix rounds it differently: 1e-4 level)
    assert np.abs(out[0] - _grey(_luminance(colourful)[0])).max() < 3e-4


def test_gray_mixer_moves_only_its_band():
    # saturated blue and red patches (display hue 240 and 0) and a neutral grey
    x = torch.tensor([[0.1, 0.1, 0.8], [0.8, 0.1, 0.1], [0.5, 0.5, 0.5]]).T.reshape(1, 3, 1, 3)
    plain = apply_program(x, EditProgram({"monochrome": 1}))[0, 0, 0]
    dark_blue = import_xmp(_xmp('crs:ConvertToGrayscale="True" crs:GrayMixerBlue="-80"')).program
    assert dark_blue.params == {"monochrome": 1.0, "gray_mix_blue": -80.0}
    out = apply_program(x, dark_blue)[0, 0, 0]
    assert out[0] < plain[0] - 0.05  # the blue patch's grey is darker
    assert abs(out[1] - plain[1]) < 1e-6 and abs(out[2] - plain[2]) < 1e-6  # red and grey untouched
    colour = apply_program(x, EditProgram({"gray_mix_blue": -80}))  # the mixer alone: only in B&W
    assert (colour - x).abs().max() < 1e-6


def test_bw_round_trips_and_colour_grading_still_tones_it(colourful, tmp_path):
    p = EditProgram({"monochrome": 1, "gray_mix_red": 30, "gray_mix_green": -20})
    exp = export_xmp(p, tmp_path / "bw.xmp")
    assert 'crs:ConvertToGrayscale="True"' in exp.text and 'crs:GrayMixerRed="30.0"' in exp.text
    assert import_xmp(tmp_path / "bw.xmp").program == p
    assert parse_program(render_program(p, "jarvis")).program == p
    toned = apply_program(colourful, p.replace(grade_highlight_hue=40, grade_highlight_saturation=60))
    assert (toned[0, 0] - toned[0, 2]).mean() > 0.01  # warm highlights on the grey


# ------------------------------------------------------------------------------------------------ white balance
def _mired_edit(kelvin: float, as_shot: float) -> float:  # 150 mired = 100 on our scale (docs/engine.md)
    return (1e6 / as_shot - 1e6 / kelvin) / 1.5


def test_custom_white_balance_is_read_against_the_as_shot_values():
    imp = import_xmp(_xmp('crs:WhiteBalance="Custom" crs:Temperature="7415" crs:Tint="+6" '
                          'crs:AsShotTemperature="6350" crs:AsShotTint="+6"'))
    assert "tint" not in imp.program.params  # Tint == AsShotTint: no tint edit
    assert imp.program.params["temperature"] == pytest.approx(_mired_edit(7415, 6350), rel=1e-9)
    assert not imp.warnings  # nothing assumed


def test_as_shot_white_balance_is_no_edit_and_missing_as_shot_is_said():
    assert import_xmp(_xmp('crs:WhiteBalance="As Shot" crs:Temperature="5150" crs:Tint="+8"')).program.is_identity()
    imp = import_xmp(_xmp('crs:WhiteBalance="Custom" crs:Temperature="7415" crs:Tint="+6"'))
    assert imp.program.params["temperature"] == pytest.approx(_mired_edit(7415, 5500), rel=1e-9)
    assert any("assumed as-shot 5500 K" in w for w in imp.warnings)
    assert any("assumed as-shot tint 0" in w for w in imp.warnings)
    auto = import_xmp(_xmp('crs:WhiteBalance="Auto"'))
    assert auto.program.is_identity() and any("Auto" in u for u in auto.unsupported) and auto.warnings


def test_warming_preset_raises_red_over_blue():
    grey = torch.full((1, 3, 4, 4), 0.5)
    prog = import_xmp(_xmp('crs:WhiteBalance="Custom" crs:Temperature="6800" crs:AsShotTemperature="5200" '
                           'crs:Tint="0" crs:AsShotTint="0"')).program
    r, g, b = apply_program(grey, prog)[0, :, 0, 0].tolist()
    assert r / b > 1.1 and "tint" not in prog.params


def test_export_writes_absolute_white_balance_for_raw_and_incremental_for_rendered():
    p = EditProgram({"temperature": 20, "tint": -5})
    rendered = export_xmp(p).text
    assert 'crs:IncrementalTemperature="20.0"' in rendered and 'crs:Temperature=' not in rendered
    raw = export_xmp(p, raw=True, as_shot=(5200, 3)).text
    kelvin = 1e6 / (1e6 / 5200 - 20 * 1.5)
    assert f'crs:Temperature="{round(kelvin)}"' in raw and 'crs:Tint="-2' in raw and "Incremental" not in raw
    # the raw sidecar, given its as-shot values, imports back to the same edit (to Kelvin rounding)
    back = import_xmp(raw.replace('crs:HasSettings="True"',
                                  'crs:HasSettings="True" crs:AsShotTemperature="5200" crs:AsShotTint="3"')).program
    assert back.params["temperature"] == pytest.approx(20, abs=0.05) and back.params["tint"] == pytest.approx(-5)
    assert any("assumed as-shot" in u for u in export_xmp(p, raw=True).unsupported)


# ------------------------------------------------------------------------------------------------ profiles
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?`'|()[]{}@%$#"


def _adobe_text(stream: bytes) -> str:
    """Camera Raw's table text, written out here from the DNG SDK's description (size, zlib, base 85)."""
    data = struct.pack("<I", len(stream)) + zlib.compress(stream)
    out = ""
    for i in range(0, len(data), 4):
        chunk = data[i:i + 4]
        v = int.from_bytes(chunk + b"\0" * (4 - len(chunk)), "little")
        digits = []
        for _ in range(5):
            digits.append(_ALPHABET[v % 85])
            v //= 85
        out += "".join(digits[:len(chunk) + 1])
    return out


def _rgb_stream(n: int, fn, dims: int = 3, primaries: int = 0, gamma: int = 1) -> bytes:
    nop = [(i * 0xFFFF + n // 2) // (n - 1) for i in range(n)]
    body = b""
    if dims == 3:
        for r in range(n):
            for g in range(n):
                for b in range(n):
                    out = fn(r / (n - 1), g / (n - 1), b / (n - 1))
                    body += struct.pack("<3H", *[(round(v * 65535) - nop[i]) % 65536
                                                 for v, i in zip(out, (r, g, b))])
    else:
        for i in range(n):
            body += struct.pack("<3H", *[(round(v * 65535) - nop[i]) % 65536 for v in fn(i / (n - 1))])
    return struct.pack("<4I", 1, 1, dims, n) + body + struct.pack("<3I2d", primaries, gamma, 0, 0.0, 2.0)


def _look_stream(deltas: np.ndarray, encoding: int = 0) -> bytes:
    v, h, s, _ = deltas.shape
    return struct.pack("<5I", 0, 1, h, s, v) + deltas.astype("<f4").tobytes() + struct.pack("<I", encoding)


def _profile_xmp(name: str, params: str, tables: dict[str, str], amount: float = 1.0) -> str:
    table_attrs = " ".join(f'crs:Table_{fp}="{text}"' for fp, text in tables.items())
    look = (f'<crs:Look><rdf:Description crs:Name="{name}" crs:Amount="{amount}" crs:UUID="0123" '
            'crs:SupportsAmount="true" crs:SupportsMonochrome="false" crs:SupportsOutputReferred="false">'
            '<crs:Group><rdf:Alt><rdf:li xml:lang="x-default">Profiles</rdf:li></rdf:Alt></crs:Group>'
            f'<crs:Parameters><rdf:Description crs:Version="15.4" crs:ProcessVersion="11.0" {params}/>'
            '</crs:Parameters></rdf:Description></crs:Look>')
    return _xmp(table_attrs, look)


def test_decode_hand_built_rgb_table_bytes():
    swap = _rgb_stream(5, lambda r, g, b: (b, g, r))
    t = decode_table(_adobe_text(swap))
    assert isinstance(t, RGBTable) and t.dimensions == 3 and t.samples.shape == (5, 5, 5, 3)
    assert (t.primaries, t.gamma, t.gamut, t.min_amount, t.max_amount) == ("srgb", "srgb", "clip", 0.0, 2.0)
    assert t.samples[4, 1, 0].tolist() == pytest.approx([0.0, 0.25, 1.0], abs=1e-4)
    fp, text = encode_table(t)
    assert decode_table(text) == t and len(fp) == 32
    curve = decode_table(_adobe_text(_rgb_stream(17, lambda v: (1 - v, v, v * v), dims=1)))
    assert curve.dimensions == 1 and curve.samples[4].tolist() == pytest.approx([0.75, 0.25, 0.0625], abs=1e-4)
    with pytest.raises(ProgramError, match="ends early"):
        decode_table(_adobe_text(swap[:100]))
    with pytest.raises(ProgramError, match="not a look table .0. or an RGB table"):
        decode_table(_adobe_text(struct.pack("<2I", 7, 1) + b"\0" * 16))
    with pytest.raises(ProgramError, match="zlib"):
        decode_table("a0000" + "00000" * 3)  # claims 10 bytes, then no zlib stream


def test_profile_only_preset_is_applied_when_its_table_is_in_the_file(colourful):
    text = _adobe_text(_rgb_stream(5, lambda r, g, b: (b, g, r)))  # swaps red and blue (sRGB space)
    imp = import_xmp(_profile_xmp("Swap", 'crs:RGBTable="AB12AB12AB12AB12AB12AB12AB12AB12"',
                                  {"AB12AB12AB12AB12AB12AB12AB12AB12": text}))
    assert imp.program.profile is not None and imp.program.profile.name == "Swap" and not imp.warnings
    out = apply_program(colourful, imp.program)
    # an affine table is reproduced exactly by trilinear interpolation: only 16-bit rounding remains
    assert (out - colourful[:, [2, 1, 0]]).abs().max() < 1e-4
    half = import_xmp(_profile_xmp("Swap", 'crs:RGBTable="AB12AB12AB12AB12AB12AB12AB12AB12"',
                                   {"AB12AB12AB12AB12AB12AB12AB12AB12": text}, amount=0.5)).program
    want = (colourful + colourful[:, [2, 1, 0]]) / 2  # amount mixes in the table's (sRGB-encoded) space
    assert (apply_program(colourful, half) - want).abs().max() < 1e-4


def test_profile_without_its_table_is_flagged_loudly(colourful):
    imp = import_xmp(_profile_xmp("Film Look 7", 'crs:LookTable="FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"', {}))
    assert imp.program.profile is None and imp.program.is_identity()
    assert any("Film Look 7" in w and "not in the file" in w for w in imp.warnings)
    assert any("Film Look 7" in u for u in imp.unsupported)
    with pytest.raises(ProgramError, match="not in the file"):  # strict without a warnings list
        EditProgram.from_dict({"Look": {"Name": "x", "Parameters": {"LookTable": "F" * 32}}})


def test_look_table_value_and_saturation_axes(colourful):
    # hand-built hue/sat/value maps: value scale 1 at V = 0 and 0.5 at V = 1 (linear encoding), then sat scale 0
    deltas = np.zeros((2, 6, 2, 3))
    deltas[..., 1] = 1.0
    deltas[0, ..., 2], deltas[1, ..., 2] = 1.0, 0.5
    t = decode_table(_adobe_text(_look_stream(deltas)))
    assert isinstance(t, LookTable) and t.deltas.shape == (2, 6, 2, 3)
    x = torch.full((1, 3, 1, 1), 0.0)
    x[0, :, 0, 0] = torch.tensor([0.2, 0.2, 0.2])  # grey: its ProPhoto V is its linear value
    lin = float(_luminance(x)[0, 0, 0])  # a grey's luminance is its linear value
    out = apply_program(x, EditProgram(profile=Profile("v", look_table=t)))[0, :, 0, 0].double().numpy()
    assert np.abs(out - _grey(lin * (1 - 0.5 * lin))).max() < 3e-4  # scale interpolated linearly in V
    grey = deltas.copy()
    grey[..., 1], grey[..., 2] = 0.0, 1.0
    g = apply_program(colourful, EditProgram(profile=Profile("grey", look_table=LookTable(grey))))[0]
    assert (g[0] - g[1]).abs().max() < 2e-5 and (g[1] - g[2]).abs().max() < 2e-5
    full_turn = deltas.copy()
    full_turn[..., 0], full_turn[..., 2] = 360.0, 1.0
    same = apply_program(colourful, EditProgram(profile=Profile("turn", look_table=LookTable(full_turn))))
    assert (same - colourful).abs().max() < 2e-5


def test_profile_round_trips_through_xmp_and_json(colourful, tmp_path):
    n = 4
    g = np.linspace(0, 1, n)
    r, gg, b = np.meshgrid(g, g, g, indexing="ij")
    table = RGBTable(np.stack([r ** 0.8, gg, b ** 1.2], -1), primaries="prophoto", gamma="1.8")
    p = EditProgram({"exposure": 0.2}, profile=Profile("mine", 0.7, rgb_table=table))
    exp = export_xmp(p, tmp_path / "p.xmp")
    assert "crs:Table_" in exp.text and 'crs:RGBTable="' in exp.text
    back = import_xmp(tmp_path / "p.xmp").program
    assert back == p and EditProgram.from_dict(p.to_dict()) == p
    assert torch.equal(apply_program(colourful, back), apply_program(colourful, p))
    assert parse_program(render_program(p, "jarvis")).program == p
    # programs with a profile render eagerly even when compiling is asked for: the same values
    assert torch.equal(apply_program(colourful, p, compile=True), apply_program(colourful, p))


# ------------------------------------------------------------------------------------------------ new sliders
def test_calibration_keeps_greys_and_moves_the_red_primary():
    x = torch.tensor([[0.7, 0.15, 0.15], [0.3, 0.3, 0.3], [0.9, 0.9, 0.9]]).T.reshape(1, 3, 1, 3)
    prog = import_xmp(_xmp('crs:RedHue="+60" crs:RedSaturation="+40" crs:ShadowTint="0"')).program
    assert prog.params == {"calibration_red_hue": 60.0, "calibration_red_saturation": 40.0}
    out = apply_program(x, prog)[0, :, 0]
    assert (out[:, 1:] - x[0, :, 0, 1:]).abs().max() < 1e-5  # greys stay exactly grey
    h_in = colorsys.rgb_to_hsv(*x[0, :, 0, 0].tolist())[0] * 360
    h_out = colorsys.rgb_to_hsv(*out[:, 0].tolist())[0] * 360
    assert 3 < h_out - h_in < 40  # + hue: red towards orange
    sat = apply_program(x, EditProgram({"calibration_red_saturation": 80}))[0, :, 0, 0]
    assert sat[0] - sat[1] > x[0, 0, 0, 0] - x[0, 1, 0, 0]  # more chroma
    orange = torch.tensor([0.9, 0.45, 0.1]).view(1, 3, 1, 1)  # no blue share: the blue primary's sliders skip it
    moved = apply_program(orange, EditProgram({"calibration_blue_hue": 100, "calibration_blue_saturation": -100}))
    assert (moved - orange).abs().max() < 1e-5


def test_shadow_tint_tints_shadows_not_highlights():
    x = torch.tensor([[0.1, 0.1, 0.1], [0.95, 0.95, 0.95]]).T.reshape(1, 3, 1, 2)
    out = apply_program(x, EditProgram({"calibration_shadow_tint": 80}))[0, :, 0]
    assert out[1, 0] < out[0, 0] - 0.003 and abs(out[0, 0] - out[2, 0]) < 1e-6  # magenta shadows
    assert (out[:, 1] - x[0, :, 0, 1]).abs().max() < 2e-3


def _chroma_noise() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    base = torch.full((1, 3, 32, 32), 0.5)
    return (base + 0.08 * torch.randn(1, 3, 32, 32, generator=g)).clamp(0, 1)


def _chroma_std(t: torch.Tensor) -> float:
    return float((t - t.mean(dim=1, keepdim=True)).std())


def test_colour_noise_reduction_removes_chroma_noise_and_keeps_luminance():
    x = _chroma_noise()
    out = apply_program(x, EditProgram({"color_noise_reduction": 100}))
    assert _chroma_std(out) < 0.5 * _chroma_std(x)
    assert np.abs(_luminance(out) - _luminance(x)).mean() < 0.01  # luminance kept (up to the clip and encode)
    fine = apply_program(x, EditProgram({"color_noise_reduction": 100, "color_noise_reduction_detail": 100}))
    assert _chroma_std(fine) > _chroma_std(out)  # more colour detail kept


def test_noise_reduction_detail_and_contrast_keep_more():
    x = _chroma_noise().mean(dim=1, keepdim=True).expand(1, 3, 32, 32).contiguous()

    def std(**extra):
        return float(apply_program(x, EditProgram({"noise_reduction": 100, **extra})).std())

    assert std(noise_reduction_detail=0) < std() < std(noise_reduction_detail=100) < float(x.std())
    assert std() < std(noise_reduction_contrast=100)


def test_sharpen_detail_damps_halos_and_masking_spares_flat_areas():
    step = torch.zeros(1, 3, 16, 32)
    step[..., 16:] = 0.8
    g = torch.Generator().manual_seed(2)
    step[..., :16] = 0.3 + 0.01 * torch.randn(1, 1, 16, 16, generator=g)  # faint texture on the flat side

    def overshoot(extra):
        out = apply_program(step, EditProgram({"sharpening": 120, **extra}))
        return float(out[0, 0, 8, 16:18].max() - 0.8)

    def flat(extra):
        return float(apply_program(step, EditProgram({"sharpening": 120, **extra}))[..., :12].std())

    assert overshoot({"sharpen_detail": 0}) < 0.5 * overshoot({})
    assert flat({"sharpen_masking": 100}) < 0.8 * flat({})  # texture on the flat side left alone
    assert overshoot({"sharpen_masking": 100}) > 0.5 * overshoot({})  # the edge is still sharpened
    assert flat({"sharpen_detail": 100}) > flat({})  # fine texture boosted


def test_grain_roughness_changes_grain_correlation():
    x = torch.full((1, 3, 64, 64), 0.5)

    def neighbour_corr(r):
        n = (apply_program(x, EditProgram({"grain_amount": 80, "grain_size": 40, "grain_roughness": r}), seed=4)
             - 0.5)[0, 1]
        a, b = n[:, :-1].flatten(), n[:, 1:].flatten()
        return float(torch.corrcoef(torch.stack([a, b]))[0, 1])
    assert neighbour_corr(100) < neighbour_corr(50) < neighbour_corr(0)


def test_vignette_roundness_style_and_highlight_contrast():
    wide = torch.full((1, 3, 20, 60), 0.5)
    circle = apply_program(wide, EditProgram({"vignette_amount": -80, "vignette_roundness": 100}))[0, 0]
    ellipse = apply_program(wide, EditProgram({"vignette_amount": -80}))[0, 0]
    # a circle darkens the left edge of a wide frame more than the top edge at the same distance ratio
    assert circle[10, 0] < circle[0, 30] - 0.05 and abs(float(ellipse[10, 0] - ellipse[0, 30])) < 0.05
    black = torch.zeros(1, 3, 20, 20)
    paint = apply_program(black, EditProgram({"vignette_amount": 80, "vignette_style": 3}))
    gain = apply_program(black, EditProgram({"vignette_amount": 80}))
    assert paint[0, 0, 0, 0] > 0.3 and gain.abs().max() < 1e-6  # paint overlay lifts black; a gain cannot
    bright = torch.tensor([0.9, 0.6, 0.2]).view(1, 3, 1, 1).expand(1, 3, 20, 20).contiguous()
    col = apply_program(bright, EditProgram({"vignette_amount": 100, "vignette_style": 2}))[0, :, 0, 0]
    assert col.max() < 1.0 and col[0] / col[1] == pytest.approx(0.9 / 0.6, rel=0.05)  # no clipped hue shift
    hc = apply_program(bright, EditProgram({"vignette_amount": -80, "vignette_highlight_contrast": 100}))
    plain = apply_program(bright, EditProgram({"vignette_amount": -80}))
    assert hc[0, 0, 0, 0] > plain[0, 0, 0, 0] + 0.02


def test_new_continuous_sliders_get_gradients(colourful):
    names = ["calibration_red_hue", "calibration_blue_saturation", "calibration_shadow_tint", "monochrome",
             "color_noise_reduction", "sharpen_detail", "vignette_roundness", "vignette_highlight_contrast"]
    vals = {n: torch.tensor(0.5 if n == "monochrome" else 20.0, requires_grad=True) for n in names}
    base = {"sharpening": 80.0, "vignette_amount": -50.0, "gray_mix_blue": 30.0}
    apply_params(colourful * 0.9, {**base, **vals}).square().mean().backward()
    for n, v in vals.items():
        assert v.grad is not None and torch.isfinite(v.grad) and v.grad != 0, n


# ------------------------------------------------------------------------------------------------ key sorting
def test_ignored_holds_only_keys_that_do_not_change_pixels():
    imp = import_xmp(_xmp(
        'crs:UUID="ABC" crs:SupportsAmount="True" crs:SupportsMonochrome="False" crs:CameraProfile="Adobe Standard" '
        'crs:LensProfileEnable="0" crs:PerspectiveVertical="0" crs:PerspectiveHorizontal="+12" crs:HasCrop="True" '
        'crs:CropTop="0.1" crs:Exposure2012="+0.3" crs:Contrast="+25" crs:Sharpness="40" crs:SharpenDetail="25" '
        'crs:GrainFrequency="50" crs:ColorNoiseReduction="25"',
        '<crs:PointColors><rdf:Seq><rdf:li>1, 2, 3</rdf:li></rdf:Seq></crs:PointColors>'))
    assert {"UUID", "SupportsAmount", "SupportsMonochrome", "CameraProfile", "LensProfileEnable",
            "PerspectiveVertical", "HasCrop", "Contrast"} <= set(imp.ignored)  # Contrast: process 2010, not in effect
    bad = {u.split("=")[0] for u in imp.unsupported}
    assert bad == {"PerspectiveHorizontal", "CropTop", "PointColors"}
    assert "3 Lightroom setting(s) that change pixels are not modelled" in imp.warnings[0]
    assert imp.program.params == {"exposure": 0.3, "sharpening": 40.0, "color_noise_reduction": 25.0}


def test_every_new_parameter_is_in_the_table_with_its_lightroom_key():
    keys = {s.lightroom: n for n, s in PARAM_SPECS.items()}
    for lr in ("ConvertToGrayscale", "GrayMixerAqua", "RedHue", "BlueSaturation", "ShadowTint",
               "ColorNoiseReduction", "ColorNoiseReductionDetail", "ColorNoiseReductionSmoothness",
               "LuminanceNoiseReductionDetail", "LuminanceNoiseReductionContrast", "SharpenDetail",
               "SharpenEdgeMasking", "GrainFrequency", "PostCropVignetteRoundness", "PostCropVignetteStyle",
               "PostCropVignetteHighlightContrast"):
        assert lr in keys, lr
    # policy text reaches them by canonical name (the parser reads PARAM_SPECS)
    res = parse_program("{monochrome=1; gray_mix_blue=-30; calibration_red_hue=10; vignette_style=3}")
    assert res.ok and res.program.params["gray_mix_blue"] == -30


def test_retouch_cli_prints_import_warnings(tmp_path, capsys):
    import argparse

    from PIL import Image

    from rlkit.cli_retouch import register

    Image.fromarray(np.full((8, 8, 3), 120, np.uint8)).save(tmp_path / "in.png")
    (tmp_path / "look.xmp").write_text(_profile_xmp("Film Look 7", 'crs:LookTable="' + "E" * 32 + '"', {}))
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["retouch", str(tmp_path / "in.png"), "--xmp", str(tmp_path / "look.xmp"), "-o",
                              str(tmp_path / "out.png")])
    assert args.func(args) == 0
    err = capsys.readouterr().err
    assert "WARNING" in err and "Film Look 7" in err and "not in the file" in err
