"""EditProgram: validation messages, Lightroom aliases, clamp reports, dict round trips."""

import json

import pytest

from rlkit.ops import (
    PARAM_SPECS,
    BrushMask,
    CompositeMask,
    EditProgram,
    LocalAdjustment,
    ProgramError,
    RadialMask,
    canonical_name,
)


def test_identity_and_defaults_dropped():
    assert EditProgram().is_identity()
    p = EditProgram({"exposure": 0.0, "vignette_midpoint": 50.0})
    assert p.is_identity() and p.params == {}
    assert EditProgram.from_dict({}).is_identity()


def test_every_spec_is_consistent_and_has_lightroom_alias():
    for name, s in PARAM_SPECS.items():
        assert s.name == name and s.lo < s.hi and s.lo <= s.default <= s.hi
        if s.lightroom:
            assert canonical_name(s.lightroom) == name
    assert len([n for n in PARAM_SPECS if n.startswith("hsl_")]) == 24
    assert PARAM_SPECS["exposure"].lo == -5 and PARAM_SPECS["exposure"].hi == 5


def test_lightroom_names_map_to_canonical():
    p = EditProgram.from_dict({"Exposure2012": 0.5, "Shadows2012": 20, "HueAdjustmentRed": -10,
                               "IncrementalTemperature": 15, "Clarity2012": 5, "GrainAmount": 10})
    assert p.params == {"exposure": 0.5, "shadows": 20, "hsl_hue_red": -10, "temperature": 15, "clarity": 5,
                        "grain_amount": 10}


def test_out_of_range_error_names_op_param_value_and_range():
    with pytest.raises(ProgramError) as e:
        EditProgram.from_dict({"Exposure2012": 7.5})
    msg = str(e.value)
    assert "exposure" in msg and "7.5" in msg and "[-5, 5]" in msg and "Exposure2012" in msg
    with pytest.raises(ProgramError, match="unknown parameter 'brightnesss'"):
        EditProgram.from_dict({"brightnesss": 1})
    with pytest.raises(ProgramError, match="finite"):
        EditProgram.from_dict({"contrast": float("nan")})
    with pytest.raises(ProgramError, match="expected a number"):
        EditProgram.from_dict({"contrast": "lots"})
    with pytest.raises(ProgramError, match="did you mean 'exposure'"):
        EditProgram({"Exposure2012": 1.0})


def test_clamp_mode_reports_what_it_clamped():
    notes = []
    p = EditProgram.from_dict({"exposure": 9, "contrast": -300, "saturation": 10}, clamp=True, notes=notes)
    assert p.params == {"exposure": 5.0, "contrast": -100.0, "saturation": 10}
    got = {(n.where, n.given, n.used) for n in notes}
    assert got == {("program.exposure", 9.0, 5.0), ("program.contrast", -300.0, -100.0)}
    assert "clamped to 5" in str(notes[0]) or "clamped to 5" in str(notes[1])


def test_kelvin_temperature_converted_to_incremental():
    warm = EditProgram.from_dict({"Temperature": 6500}).get("temperature")
    cool = EditProgram.from_dict({"Temperature": 4000}).get("temperature")
    # mired difference to 5500 K, 150 mired == 100: (181.818 - 153.846) / 1.5
    assert warm == pytest.approx((1e6 / 5500 - 1e6 / 6500) / 1.5)
    assert cool < 0 < warm


def test_curves_validated():
    p = EditProgram.from_dict({"ToneCurvePV2012": ["0, 0", "128, 140", "255, 255"]})
    assert p.curves["master"] == ((0, 0), (128, 140), (255, 255))
    assert EditProgram.from_dict({"ToneCurvePV2012": [[0, 0], [255, 255]]}).is_identity()
    with pytest.raises(ProgramError, match="x must increase strictly"):
        EditProgram.from_dict({"tone_curve": {"red": [[0, 0], [100, 50], [90, 60]]}})
    with pytest.raises(ProgramError, match=r"y=300 is outside the allowed range \[0, 255\]"):
        EditProgram.from_dict({"tone_curve": {"master": [[0, 0], [128, 300]]}})
    with pytest.raises(ProgramError, match="unknown tone-curve channel"):
        EditProgram.from_dict({"tone_curve": {"alpha": [[0, 0], [255, 255]]}})


def test_local_adjustments_from_dict_and_errors():
    p = EditProgram.from_dict({"local": [{"mask": {"type": "radial", "cx": 0.5, "cy": 0.5, "rx": 0.2, "ry": 0.2},
                                          "params": {"Exposure2012": 1.0}}]})
    assert isinstance(p.local[0], LocalAdjustment) and isinstance(p.local[0].mask, RadialMask)
    assert p.local[0].params == {"exposure": 1.0}
    with pytest.raises(ProgramError, match="non-local parameter 'hsl_hue_red'"):
        EditProgram.from_dict({"local": [{"mask": {"type": "radial", "cx": 0, "cy": 0, "rx": 1, "ry": 1},
                                          "params": {"hsl_hue_red": 1}}]})
    with pytest.raises(ProgramError, match="unknown mask type 'blob'"):
        EditProgram.from_dict({"local": [{"mask": {"type": "blob"}, "params": {"exposure": 1}}]})
    with pytest.raises(ProgramError, match=r"radial mask: parameter 'feather'=150 is outside .*\[0, 100\]"):
        RadialMask(0.5, 0.5, 0.1, 0.1, feather=150)
    with pytest.raises(ProgramError, match="op 'xor'"):
        CompositeMask((("add", BrushMask(((0.5, 0.5, 0.1),))), ("xor", BrushMask(((0.1, 0.1, 0.1),)))))
    with pytest.raises(ProgramError, match=r"disks\[0\] must be \[x, y, r\]"):
        BrushMask(((0.5, 0.5),))


def test_to_dict_is_json_and_round_trips():
    p = EditProgram.from_dict({
        "exposure": 0.3, "hsl_saturation_blue": -20, "tone_curve": {"master": [[0, 10], [255, 250]]},
        "local": [{"mask": {"type": "composite", "parts": [
            ["add", {"type": "linear", "x0": 0, "y0": 0, "x1": 0, "y1": 0.5}],
            ["intersect", {"type": "luminance_range", "lo": 0.5, "hi": 1.0}],
            ["subtract", {"type": "disk", "x": 0.5, "y": 0.5, "r": 0.1}]]}, "params": {"dehaze": 30}}]})
    d = json.loads(json.dumps(p.to_dict()))
    assert EditProgram.from_dict(d) == p
    assert d["exposure"] == 0.3 and "params" not in d
    assert EditProgram.from_dict({"params": {"exposure": 0.3}}).params == {"exposure": 0.3}


def test_negligible_values_are_zero_so_round_trips_keep_the_program():
    """A denormal local offset (found by hypothesis) is zero: it must not vanish only after a rescale."""
    from rlkit.ops import parse_program, render_program
    from rlkit.ops.masks import RadialMask

    prog = EditProgram.from_dict({"exposure": 1e-12, "local": [
        {"mask": RadialMask(0.5, 0.5, 0.2, 0.2).to_dict(), "params": {"saturation": 5e-324}}]})
    assert prog.is_identity()
    kept = EditProgram.from_dict({"exposure": 0.001, "local": [
        {"mask": RadialMask(0.5, 0.5, 0.2, 0.2).to_dict(), "params": {"saturation": 0.01}}]})
    back = parse_program(render_program(kept, "jarvis"), "jarvis").program
    assert back.params == {"exposure": 0.001}
    assert back.local[0].params["saturation"] == pytest.approx(0.01)


def test_mask_validation_errors_name_the_problem():
    with pytest.raises(ProgramError, match=r"must be 2-D \(H, W\), got shape \(2,\)"):
        EditProgram.from_dict({"local": [{"mask": {"type": "tensor", "data": [0.5, 0.5]}, "params": {"exposure": 1}}]})
    with pytest.raises(ProgramError, match=r"'disks\[0\]\.r'=-3 is outside the allowed range \[0, inf\)"):
        BrushMask(((10.0, 10.0, -3.0),), pixels=True)


def test_clamp_mode_covers_masks_and_curves():
    from rlkit.ops import parse_program

    text = ('{"exposure": 7, "tone_curve": {"master": [[0, 0], [128, 300], [255, 255]]}, "local": [{"mask": '
            '{"type": "radial", "cx": 0.5, "cy": 0.5, "rx": 0.2, "ry": 0.2, "feather": 120}, "params": {"exposure": 1}}]}')
    strict = parse_program(text)
    assert not strict.ok and len(strict.problems) == 3
    r = parse_program(text, clamp=True)
    assert r.ok and r.program.params == {"exposure": 5.0}
    assert r.program.curves["master"][1] == (128.0, 255.0) and r.program.local[0].mask.feather == 100.0
    assert sorted((n.given, n.used) for n in r.notes) == [(7, 5), (120, 100), (300, 255)]
    with pytest.raises(ProgramError, match=r"linear mask: parameter 'y1'=12 is outside"):
        EditProgram.from_dict({"local": [{"mask": {"type": "linear", "x0": 0, "y0": 0, "x1": 0, "y1": 12},
                                          "params": {"exposure": 1}}]})
