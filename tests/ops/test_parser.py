"""Text forms: JarvisArt / RetouchIQ / canonical JSON parsing, rendering round trips and a fuzz test."""

import builtins
import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlkit.ops import PARAM_SPECS, EditProgram, ProgramError, as_program, parse_program, render_program


def test_jarvis_format():
    text = ('<think>The sky is dull; lift shadows.</think>\n<answer>{"Exposure2012": 0.35, "Shadows2012": 25,'
            ' "HueAdjustmentBlue": -10, "ToneCurvePV2012": [[0,0],[128,140],[255,255]]}</answer>')
    r = parse_program(text)
    assert r.ok and r.format == "jarvis" and r.reasoning == "The sky is dull; lift shadows."
    assert r.program.params == {"exposure": 0.35, "shadows": 25, "hsl_hue_blue": -10}
    assert r.program.curves["master"][1] == (128, 140)


def test_jarvis_envelope_problems_keep_recoverable_program():
    r = parse_program('sure! <answer>{"Exposure2012": 0.5}</answer>', "jarvis")
    assert not r.ok and r.program.params == {"exposure": 0.5}
    assert "does not match" in r.problems[0].reason
    r = parse_program('<think>a</think><answer>{"Exposure2012": 0.5,}</answer>')
    assert not r.ok and r.program is None
    assert r.problems[0].position == len('<think>a</think><answer>{"Exposure2012": 0.5') + 1
    r = parse_program('<think>a</think><answer>{"Exposure2012": 9}</answer>')
    assert not r.ok and "[-5, 5]" in r.problems[0].reason
    r = parse_program('<think>a</think><answer>{"Exposure2012": 9}</answer>', clamp=True)
    assert r.ok and r.program.params == {"exposure": 5.0} and r.notes[0].given == 9


def test_retouchiq_format():
    r = parse_program("The user wants drama, so I darken and add contrast.\n{exposure=+0.9; contrast=-30}")
    assert r.ok and r.format == "retouchiq"
    assert r.program.params == {"exposure": 0.9, "contrast": -30}
    assert r.reasoning.startswith("The user wants drama")
    r = parse_program("exposure=-0.5, Saturation=20\nvibrance = 10")
    assert r.ok and r.program.params == {"exposure": -0.5, "saturation": 20, "vibrance": 10}


def test_retouchiq_problems_have_positions():
    text = "{exposure=+0.9; sparkle=3; contrast=abc}"
    r = parse_program(text)
    assert not r.ok and r.program.params == {"exposure": 0.9}
    by_reason = {p.reason.split(":")[0]: p.position for p in r.problems}
    assert by_reason["unknown operation 'sparkle'"] == text.index("sparkle")
    assert any(p.position == text.index("abc") and "not a number" in p.reason for p in r.problems)
    r = parse_program("{exposure=1; exposure=2}")
    assert not r.ok and "given twice" in r.problems[0].reason


def test_json_format():
    r = parse_program('Plan: warmer.\n```json\n{"temperature": 20, "hsl_luminance_orange": 10}\n```')
    assert r.ok and r.format == "json" and r.program.params == {"temperature": 20, "hsl_luminance_orange": 10}
    r = parse_program('{"temperature": 20} trailing', "json")
    assert not r.ok and r.program is not None
    assert not parse_program('{"temperature": NaN}', "json").ok
    assert not parse_program('{"temperature": 1e999}', "json").ok


@st.composite
def programs(draw):
    names = draw(st.lists(st.sampled_from(sorted(PARAM_SPECS)), max_size=6, unique=True))
    params = {}
    for n in names:
        s = PARAM_SPECS[n]
        params[n] = draw(st.floats(s.lo, s.hi, allow_nan=False, allow_infinity=False))
    d = dict(params)
    if draw(st.booleans()):
        d["tone_curve"] = {"master": [[0, draw(st.floats(0, 60))], [128, draw(st.floats(60, 200))], [255, 255]]}
    if draw(st.booleans()):
        d["local"] = [{"mask": {"type": "radial", "cx": draw(st.floats(0, 1)), "cy": draw(st.floats(0, 1)),
                                "rx": draw(st.floats(0.05, 1)), "ry": draw(st.floats(0.05, 1)),
                                "angle": draw(st.floats(-90, 90)), "feather": draw(st.floats(0, 100))},
                       "params": {"exposure": draw(st.floats(-2, 2)), "saturation": draw(st.floats(-50, 50))}},
                      {"mask": {"type": "composite", "parts": [
                          ["add", {"type": "linear", "x0": 0, "y0": 0, "x1": 0, "y1": 1}],
                          ["subtract", {"type": "brush", "disks": [[0.5, 0.5, draw(st.floats(0.01, 0.5))]]}]]},
                       "params": {"clarity": draw(st.floats(-50, 50))}}]
    return EditProgram.from_dict(d)


def _close(a: EditProgram, b: EditProgram) -> bool:
    da, db = a.to_dict(), b.to_dict()
    return json.dumps(da, sort_keys=True) == json.dumps(db, sort_keys=True) or _approx(da, db)


def _approx(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_approx(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_approx(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return abs(float(a) - float(b)) <= 1e-7 * max(1.0, abs(float(a)))
    return a == b


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.sampled_from(["jarvis", "retouchiq", "json"]))
def test_render_round_trips(program, fmt):
    text = render_program(program, fmt, reasoning="because")
    for f in (fmt, "auto"):
        r = parse_program(text, f)
        assert r.ok, (text, r.problems)
        if f == "auto" and fmt != "jarvis" and program.is_identity():
            # "<reasoning>\n{}" is both an empty RetouchIQ answer and an empty JSON object (the two renders
            # are the same text); either reading gives the identity program, checked below
            assert r.format in ("json", "retouchiq")
        else:
            assert r.format == fmt
        assert _close(r.program, program), (text, r.program.to_dict(), program.to_dict())


@pytest.mark.parametrize("m", [0.2, 0.5, 1.0])
def test_partial_black_and_white_round_trips_in_the_jarvis_form(m):
    # Lightroom's ConvertToGrayscale is on or off; a partial blend is written under our own name instead
    # (found by the round-trip property above: 0.5 came back as 1.0)
    p = EditProgram({"monochrome": m, "exposure": 0.3})
    r = parse_program(render_program(p, "jarvis"))
    assert r.ok and r.program.params == {"monochrome": m, "exposure": 0.3}


def test_identity_round_trips():
    for fmt in ("jarvis", "retouchiq", "json"):
        r = parse_program(render_program(EditProgram(), fmt))
        assert r.ok and r.program.is_identity(), (fmt, r.problems)


_SEEDS = [
    "", "{", "}", "{{{{", "<think>", "<answer>", "<think><think></think><answer>{}</answer>",
    '<think>x</think><answer><answer>{"Exposure2012":1}</answer></answer>', "exposure=", "exposure==1",
    "=1", "exposure=+", "{exposure=1", "exposure=1e999999", "exposure=" + "9" * 5000, '{"exposure": ' + "9" * 5000 + "}",
    '{"exposure": NaN}', '{"exposure": Infinity}', '{"exposure": -Infinity}', "[" * 50000, "{" * 50000,
    '{"a":' * 3000 + "1" + "}" * 3000, "__import__('os').system('touch /tmp/pwned')", "exec('1/0')",
    'eval("2+2")', "exposure=__import__('os')", '{"exposure": "__import__(\'os\')"}', "\x00\x01\x02",
    "ÉxposüRE=1; 曝光=2", "exposure=1;" * 1000, "local=[{]", "tone_curve={\"master\": [[0,0],[0,0]]}",
    '{"local": [{"mask": {"type": "tensor", "data": [[2]]}, "params": {"exposure": 1}}]}',
    '{"local": "x"}', '{"tone_curve": 5}', '{"local": [{"mask": {"type": "radial"}}]}', "\ud800",
    '<think>' + 'a' * 300000 + '</think>', '{"ToneCurvePV2012": [1,2,3]}', '{"MaskGroupBasedCorrections": [1]}',
    '{"MaskGroupBasedCorrections": [{"CorrectionMasks": [{"What": "Mask/Paint", "Dabs": ["x y z"]}]}]}',
]
_ALPHABET = "{}[]<>\"':;,=+-.eE0123456789 \n\tabcdefghijklmnopqrstuvwxyz_/\\NaInfity" + "é曝\x00"


def _mutate(rng: random.Random, s: str) -> str:
    s = list(s)
    for _ in range(rng.randint(1, 6)):
        op = rng.random()
        i = rng.randint(0, len(s))
        if op < 0.4:
            s.insert(i, rng.choice(_ALPHABET))
        elif op < 0.7 and s:
            del s[min(i, len(s) - 1)]
        elif s:
            j = rng.randint(0, len(s))
            s[i:i] = s[min(i, j):max(i, j)]
    return "".join(s)


def test_fuzz_parser_never_raises_and_never_executes(monkeypatch):
    called = []
    monkeypatch.setattr(builtins, "eval", lambda *a, **k: called.append("eval"))
    monkeypatch.setattr(builtins, "exec", lambda *a, **k: called.append("exec"))
    monkeypatch.setattr(builtins, "__import__", _guard_import(called))
    rng = random.Random(0)
    good = [render_program(EditProgram.from_dict({"exposure": 0.5, "contrast": -20, "tone_curve": {
        "master": [[0, 0], [128, 140], [255, 255]]}, "local": [{"mask": {"type": "radial", "cx": 0.5, "cy": 0.5,
                                                                            "rx": 0.2, "ry": 0.3},
                                                                   "params": {"exposure": 1}}]}), f)
            for f in ("jarvis", "retouchiq", "json")]
    corpus = _SEEDS + good
    n = 0
    for i in range(3000):
        base = corpus[i % len(corpus)]
        text = _mutate(rng, base) if i >= len(corpus) else base
        for fmt in ("auto", "jarvis", "retouchiq", "json"):
            r = parse_program(text, fmt)
            n += 1
            assert isinstance(r.ok, bool)
            assert r.ok == (not r.problems and r.program is not None)
            assert all(isinstance(p.reason, str) and p.reason for p in r.problems)
            assert all(p.position is None or 0 <= p.position <= len(text) for p in r.problems)
            assert not any("internal parser error" in p.reason for p in r.problems), (text[:200], r.problems)
    assert n == 12000 and not called
    assert parse_program(12345).problems[0].reason == "expected text, got int"  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fmt must be one of"):
        parse_program("x", "yaml")


def _guard_import(called):
    real = builtins.__import__

    def guarded(name, *a, **k):
        if name in ("os", "subprocess") and k.get("fromlist") is None and not a:
            called.append(name)
        return real(name, *a, **k)

    return guarded


def test_thinking_trace_then_retouchiq_or_json():
    text = "<think>The photo is dark.</think>\n{exposure=+0.5; contrast=10}"
    r = parse_program(text)
    assert r.ok and r.format == "retouchiq" and r.reasoning == "The photo is dark."
    assert r.program.params == {"exposure": 0.5, "contrast": 10}
    r = parse_program("<think>t</think> exposure=+0.5; sparkle=1")
    assert not r.ok and r.problems[0].position == len("<think>t</think> exposure=+0.5; ")
    r = parse_program('<think>t</think>{"saturation": -20}')
    assert r.ok and r.format == "json"


def test_one_bad_key_does_not_void_a_json_program():
    # like the name=value form: the valid keys run, each bad key is reported at its own position
    for text, bad in (('{"exposure": 0.5, "sparkle": 3, "contrast": 500}', ('"sparkle"', '"contrast"')),
                      ('<think>a</think><answer>{"Exposure2012": 0.5, "Sparkle": 3}</answer>', ('"Sparkle"',))):
        r = parse_program(text)
        assert not r.ok and r.program == EditProgram({"exposure": 0.5})
        assert [p.position for p in r.problems] == [text.index(b) for b in bad]
    assert parse_program('{"sparkle": 3}').program is None


def test_json_after_reasoning_that_contains_braces():
    p = EditProgram({"exposure": 0.9})
    for text in ('Keep the {natural} look.\n{"exposure": 0.9}', render_program(p, "json", reasoning="Keep {it} soft.")):
        for fmt in ("auto", "json"):
            r = parse_program(text, fmt)
            assert r.ok and r.program == p, (fmt, r.problems)
    assert parse_program('Keep the {natural} look.\n{"exposure": 0.9}', "json").reasoning == "Keep the {natural} look."


def test_auto_reports_broken_json_where_it_breaks():
    t = 'Plan: brighten.\n```json\n{"exposure": 0.5,, "contrast": 10}\n```'
    r = parse_program(t)
    assert r.program is None and r.problems[0].position == t.index(",,") + 1
    assert "invalid JSON" in r.problems[0].reason


def test_retouchiq_kelvin_temperature_like_json():
    r = parse_program("Temperature=5000; exposure=0.2")
    assert r.ok and r.program == parse_program('{"Temperature": 5000, "exposure": 0.2}').program
    assert r.program.params["temperature"] == pytest.approx((1e6 / 5500 - 1e6 / 5000) * 100 / 150)


def test_auto_tells_json_values_of_operations_from_a_json_answer():
    local = ('[{"mask": {"type": "radial", "cx": 0.5, "cy": 0.5, "rx": 0.2, "ry": 0.2}, '
             '"params": {"exposure": 1}}]')
    for text in (f"exposure=0.5; local={local}", f"Brighten the face.\nexposure=0.5; local={local}"):
        r = parse_program(text)
        assert r.ok and r.format == "retouchiq" and len(r.program.local) == 1 and r.program.params == {"exposure": 0.5}
    r = parse_program('I will set exposure=0.5 here.\n{"exposure": 0.5, "contrast": 10}')
    assert r.ok and r.format == "json" and r.program == EditProgram({"exposure": 0.5, "contrast": 10})
    # reasoning with more braces than the parser tries from the front: the answer is found from the end
    r = parse_program("think {x} " * 500 + '{"exposure": 0.5}')
    assert r.ok and r.program == EditProgram({"exposure": 0.5})


def test_cut_off_json_answer_is_not_mistaken_for_its_inner_objects():
    # an answer cut at the token limit: the objects nested in the unclosed one are not the program
    text = ('Brighten the face a little.\n{"exposure": -0.5, "local": [{"mask": {"type": "radial", "cx": 0.5, '
            '"cy": 0.4, "rx": 0.2, "ry": 0.2}, "params": {"exposure": 1.5, "contrast": 20}')
    for fmt in ("auto", "json"):
        r = parse_program(text, fmt)
        assert not r.ok and r.program is None and "invalid JSON" in r.problems[0].reason


def test_json_answer_beats_an_operation_quoted_in_the_reasoning():
    r = parse_program('I first thought exposure=+0.3, but the sky needs more.\n'
                      '{"exposure": 0.8, "contrast": 15, "sparkle": 3}')
    assert r.format == "json" and r.program == EditProgram({"exposure": 0.8, "contrast": 15})
    assert [p.reason for p in r.problems] == ["program: unknown parameter 'sparkle'"]


def test_many_bad_keys_are_each_reported_at_their_first_occurrence():
    # more keys than the parser looks up one by one: the one-pass search must give what str.find gives
    keys = [f"bad{i}" for i in range(12)]
    text = '{"why": "a \\"quoted\\" word", "notes": {"bad3": 2}, ' + ", ".join(f'"{k}": 1' for k in keys) + \
        ', "exposure": 0.5}'
    r = parse_program(text, "json")
    assert r.program == EditProgram({"exposure": 0.5})
    by_key = {p.reason.split("'")[1]: p.position for p in r.problems}
    assert by_key == {k: text.index(f'"{k}"') for k in ["why", "notes", *keys]}
    assert by_key["bad3"] == text.index('{"bad3": 2}') + 1  # the first occurrence is the nested one


def test_as_program_from_text_dict_or_program():
    p = EditProgram({"exposure": 0.5, "contrast": 10})
    assert as_program(p) is p
    assert as_program({"Exposure2012": 0.5, "contrast": 10}) == p
    assert as_program({"params": {"exposure": 0.5, "contrast": 10}}) == p
    assert as_program("Brighten it.\n{exposure=+0.5; contrast=10}") == p
    assert as_program('<think>a</think><answer>{"Exposure2012": 0.5, "Contrast2012": 10}</answer>', fmt="jarvis") == p
    assert as_program('{"exposure": 9}', clamp=True) == as_program({"exposure": 9}, clamp=True) == EditProgram(
        {"exposure": 5.0})


def test_as_program_errors_say_where_and_what():
    with pytest.raises(ProgramError, match=r"^reference 3: program: unknown parameter 'sparkle'$"):
        as_program({"sparkle": 1}, where="reference 3")
    with pytest.raises(ProgramError, match=r"^program: parameter 'exposure' .* outside the allowed range \[-5, 5\]$"):
        as_program({"exposure": 9})
    with pytest.raises(ProgramError, match=r"^program: local\[0\]\.mask: "):
        as_program({"local": [{"mask": {"type": "radial"}, "params": {"exposure": 1}}]})
    # text must parse cleanly: a program recovered from text with problems is refused, every problem is listed
    with pytest.raises(ProgramError, match=r"^row 7: text does not parse as a program \(auto format\): "
                                           r"at 15: unknown operation 'sparkle'$"):
        as_program("exposure=+0.5; sparkle=1", where="row 7")
    with pytest.raises(ProgramError, match=r"^program: .*\(json format\): at 17: invalid JSON: Expecting property"):
        as_program('{"exposure": 0.5,}', fmt="json")
    with pytest.raises(ProgramError, match=r"and 2 more\)$"):
        as_program("exposure=0.5; a=1; b=2; c=3; d=4; e=5; f=6; g=7")
    with pytest.raises(ProgramError, match=r"^program: expected an EditProgram, a program dict or text, got int$"):
        as_program(3)  # type: ignore[arg-type]
