"""The fused 1-D LUT path (pointwise-only programs) against the unfused stages and the sRGB standard."""

import numpy as np
import pytest
import torch

import rlkit.ops.fused as fused
from rlkit.ops import EditProgram, LocalAdjustment, TensorMask, apply_params, apply_program, lut, stages


def _decode(x: np.ndarray) -> np.ndarray:  # IEC 61966-2-1, written out independently of rlkit
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _encode(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(np.maximum(x, 0.0031308), 1 / 2.4) - 0.055)


REAL_MIN_PIXELS = (fused.MIN_PIXELS_GAIN, fused.MIN_PIXELS_CURVES)


@pytest.fixture(autouse=True)
def fuse_at_any_size(monkeypatch):
    """These tests check the fused paths' values on small images: take the paths whatever the size (the engine
    itself uses them only from the sizes where they pay off; the gate has its own tests at the end)."""
    monkeypatch.setattr(fused, "MIN_PIXELS_GAIN", 0)
    monkeypatch.setattr(fused, "MIN_PIXELS_CURVES", 0)


@pytest.fixture
def unfused(monkeypatch):
    """Call ``fn()`` with the fused path switched off (the full stage-by-stage pipeline)."""
    def run(fn):
        with monkeypatch.context() as m:
            m.setattr(fused, "fusible", lambda *a: False)
            return fn()
    return run


def _spy(monkeypatch, name: str) -> list:
    """Count the calls of fused-path function ``name`` (which still runs): the list grows by one per call."""
    calls, real = [], getattr(fused, name)
    monkeypatch.setattr(fused, name, lambda *a: calls.append(1) or real(*a))
    return calls


def _sweep() -> torch.Tensor:  # every channel sweeps [0, 1] densely, plus the sRGB knees exactly
    t = torch.cat([torch.linspace(0.0, 1.0, 50001), torch.tensor([0.04045, 0.0031308, 1.0, 0.0])])
    return t.view(1, 1, 1, -1).expand(2, 3, 1, -1).contiguous()


PROGRAMS = [
    {"exposure": 0.4},
    {"exposure": 1.0},
    {"exposure": -1.3, "temperature": -40},
    {"exposure": 3.0, "tint": 50, "temperature": 70},
    {"exposure": 0.7, "tone_curve": {"master": [[0, 10], [128, 150], [255, 240]], "red": [[0, 0], [255, 200]]}},
    {"tone_curve": {"blue": [[0, 30], [64, 50], [192, 220], [255, 255]]}},
]


@pytest.mark.parametrize("d", PROGRAMS)
def test_fused_matches_unfused_pipeline(d, unfused, monkeypatch):
    x = _sweep()
    p = EditProgram.from_dict(d)
    calls = _spy(monkeypatch, "tables")
    fused = apply_program(x, p)
    assert calls, "a pointwise-only program must take the fused path"
    ref = unfused(lambda: apply_program(x, p))
    # documented bound: < 1e-5 everywhere (measured <= 4e-6, float32 rounding of both paths included)
    assert (fused - ref).abs().max() < 1e-5


def test_fused_exposure_white_balance_against_srgb_standard():
    x = _sweep()
    p = EditProgram({"exposure": 0.8, "temperature": 25, "tint": -10})
    t, m = 0.25, -0.1
    gains = np.array([2 ** (0.5 * t + 0.25 * m), 2 ** (-0.5 * m), 2 ** (-0.5 * t + 0.25 * m)])
    gains = gains / (0.2126 * gains[0] + 0.7152 * gains[1] + 0.0722 * gains[2]) * 2 ** 0.8
    xs = x.double().numpy()
    ref = _encode(np.clip(gains.reshape(1, 3, 1, 1) * _decode(xs), 0.0, 1.0))
    assert np.abs(apply_program(x, p).double().numpy() - ref).max() < 2e-5


def test_identity_program_stays_exact_and_identity_curve_is_identity():
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    assert torch.equal(apply_program(x, EditProgram()), x)
    ident = EditProgram.from_dict({"tone_curve": {"master": [[0, 0], [255, 255]]}})
    assert (apply_program(x, ident) - x).abs().max() < 1e-6


def test_out_of_domain_inputs_take_the_exact_path(unfused):
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    p = EditProgram({"exposure": -1.0})
    hot = x.clone()
    hot[0, 0, 0, 0] = 1.7  # above white: -1 EV brings it back into range, a [0,1] LUT could not know that
    assert torch.equal(apply_program(hot, p), unfused(lambda: apply_program(hot, p)))
    nan = x.clone()
    nan[0, 1, 2, 3] = float("nan")
    assert not fused.fusible(nan, stages.Params(1, x.device, {"exposure": torch.tensor(-1.0)}, {}), None)
    neg = x.clone()
    neg[0, 2, 1, 1] = -0.3  # below black is exact on the LUT: the pipeline maps it to black like 0
    assert (apply_program(neg, p) - unfused(lambda: apply_program(neg, p))).abs().max() < 1e-5
    assert apply_program(neg, p)[0, 2, 1, 1] == 0.0


def test_non_pointwise_programs_are_not_fused():
    x = torch.rand(1, 3, 8, 8)
    P = stages.Params(1, x.device, {"exposure": torch.tensor(0.5), "contrast": torch.tensor(20.0)}, {})
    assert not fused.fusible(x, P, None)  # contrast acts on luminance: not a per-channel 1-D map
    local = stages.Params(1, x.device, {"exposure": torch.tensor(0.5)}, {"exposure": torch.ones(1, 1, 8, 8)})
    assert not fused.fusible(x, local, None)
    # a local exposure still renders (unfused) and equals the global one when the mask is full
    p = EditProgram({"exposure": 0.5}, local=[LocalAdjustment(TensorMask(torch.ones(8, 8)), {"exposure": 0.5})])
    assert torch.allclose(apply_program(x, p), apply_program(x, EditProgram({"exposure": 1.0})), atol=1e-5)


def test_slider_gradients_still_flow_and_match_the_unfused_path(unfused):
    x = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(3)) * 0.8
    grads = []
    for run in (lambda f: f(), unfused):
        v = {"exposure": torch.tensor(0.3, requires_grad=True), "temperature": torch.tensor(10.0, requires_grad=True)}
        run(lambda v=v: apply_params(x, v)).mean().backward()
        grads.append(torch.stack([v["exposure"].grad, v["temperature"].grad]))
    assert (grads[0] != 0).all() and torch.allclose(grads[0], grads[1])
    # under no_grad the same sliders do take the fused path and give the same image
    with torch.no_grad():
        assert (apply_params(x, {"exposure": 0.3}) - unfused(lambda: apply_params(x, {"exposure": 0.3}))
                ).abs().max() < 1e-5


def test_fused_path_is_differentiable_in_the_image(unfused):
    x = (0.1 + 0.8 * torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(4))).requires_grad_()
    p = EditProgram({"exposure": -0.5, "temperature": 20})  # all gains < ~1.1: no white clip in this range
    g_fused, = torch.autograd.grad(apply_program(x, p).sum(), x)
    g_ref, = torch.autograd.grad(unfused(lambda: apply_program(x, p)).sum(), x)
    assert torch.allclose(g_fused, g_ref, rtol=2e-3, atol=1e-4)


def test_extreme_unclamped_gain_falls_back_and_stays_finite():
    x = torch.rand(1, 3, 8, 8)
    out = apply_params(x, {"exposure": 300.0})
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


TAIL_PROGRAMS = [
    {"contrast": 30, "tone_curve": {"master": [[0, 10], [128, 150], [255, 240]], "red": [[0, 0], [255, 200]]}},
    {"saturation": -40, "clarity": 20, "tone_curve": {"blue": [[0, 30], [64, 50], [192, 220], [255, 255]]}},
    {"exposure": 2.0, "shadows": 40, "tone_curve": {"master": [[0, 0], [100, 120], [255, 255]]}},
]


@pytest.mark.parametrize("d", TAIL_PROGRAMS)
def test_tail_lut_matches_exact_encode_and_curves(d, monkeypatch):
    # non-pointwise programs with point curves: clamp + encode + curves run as one sqrt-spaced 1-D table
    x = torch.cat([_sweep()[..., :4096].reshape(2, 3, 64, 64), torch.rand(2, 3, 64, 64)], dim=3)
    p = EditProgram.from_dict(d)
    calls = _spy(monkeypatch, "tail_tables")
    fast = apply_program(x, p)
    assert calls, "a program with curves must take the tail LUT when no gradient is recorded"
    monkeypatch.setattr(fused, "tail_tables", lambda *a: None)  # None = the exact encode + curve lookups
    exact = apply_program(x, p)
    assert (fast - exact).abs().max() < 1e-5


def test_tail_lut_not_used_when_gradients_are_recorded(monkeypatch):
    monkeypatch.setattr(fused, "tail_tables", lambda *a: pytest.fail("tail LUT used while recording gradients"))
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    ev = torch.tensor(0.2, requires_grad=True)
    apply_params(x, {"exposure": ev, "contrast": 10.0}, curves={"master": [(0, 0), (128, 150), (255, 255)]}
                 ).mean().backward()
    assert ev.grad is not None and ev.grad > 0


def test_nan_images_with_curves_get_a_clear_error():
    x = torch.rand(1, 3, 8, 8)
    x[0, 1, 2, 3] = float("nan")
    for d in ({"exposure": 0.3, "tone_curve": {"master": [[0, 10], [255, 250]]}},
              {"contrast": 20, "tone_curve": {"master": [[0, 10], [255, 250]]}}):
        with pytest.raises(ValueError, match="images contain NaN"):
            apply_program(x, EditProgram.from_dict(d))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fused_cuda_matches_cpu():  # pragma: no cover - runs where a GPU is present
    x = _sweep()
    p = EditProgram.from_dict(PROGRAMS[4])
    assert torch.allclose(apply_program(x.cuda(), p).cpu(), apply_program(x, p), atol=1e-5)


@pytest.mark.slow
@pytest.mark.skipif("not __import__('os').environ.get('RLKIT_TEST_COMPILE')",
                    reason="torch.compile is slow on small CPUs; set RLKIT_TEST_COMPILE=1")
def test_fused_compiled_matches_eager():  # pragma: no cover - opt-in
    x = _sweep()
    p = EditProgram.from_dict(PROGRAMS[4])
    assert torch.allclose(apply_program(x, p, compile=True), apply_program(x, p), atol=1e-6)


@pytest.mark.parametrize("sqrt", [False, True])
def test_chunked_eager_lookup_equals_the_one_shot_lookup(monkeypatch, sqrt):
    # the eager lookup runs in chunks through reused buffers; a non-contiguous image takes the one-shot path.
    # Chunks of 1024 pixels over 3 x 1500 pixels: a short last chunk, and values outside [0, top] clamped.
    monkeypatch.setattr(lut, "LUT_CHUNK", 1)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 30, 50, generator=g) * 1.4 - 0.2
    top = torch.ones(2, 3, 1) if sqrt else torch.tensor([[[1.0], [0.8], [0.5]], [[1.0], [0.9], [0.7]]])
    vals = torch.rand(2, 3, 65, generator=g)
    slope = torch.cat([vals[..., 1:] - vals[..., :-1], torch.zeros(2, 3, 1)], dim=-1)
    chunked = lut.lut_lerp(x, top, vals, slope, sqrt=sqrt)
    strided = x.transpose(2, 3).contiguous().transpose(2, 3)  # same values, not contiguous
    one_shot = lut.lut_lerp(strided, top, vals, slope, sqrt=sqrt)
    assert torch.equal(chunked, one_shot)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_image_with_curves_gets_a_clear_error(bad):
    # with point curves and a non-fusible op, the curves run as a lookup table: NaN and inf get a clear
    # message naming the problem (inf used to crash inside gather with an index of -2^63)
    x = torch.rand(1, 3, 8, 8)
    x[0, 1, 2, 3] = bad
    p = EditProgram.from_dict({"contrast": 20, "tone_curve": {"master": [[0, 10], [255, 240]]}})
    with pytest.raises(ValueError, match="NaN or inf values; point tone curves need finite inputs"):
        apply_program(x, p)


@pytest.mark.parametrize(("d", "size", "fuses"), [
    ({"exposure": 0.5, "temperature": 20}, 64, False),   # a GRPO-sized batch: stage by stage is ~2x faster
    ({"exposure": 0.5, "temperature": 20}, 384, True),
    ({"exposure": 0.5, "tone_curve": {"master": [[0, 10], [255, 240]]}}, 64, False),
    ({"exposure": 0.5, "tone_curve": {"master": [[0, 10], [255, 240]]}}, 100, True),
    ({"contrast": 20, "tone_curve": {"master": [[0, 10], [255, 240]]}}, 64, False),
    ({"contrast": 20, "tone_curve": {"master": [[0, 10], [255, 240]]}}, 100, True),
])
def test_fusions_are_used_only_where_their_tables_pay_off(d, size, fuses, monkeypatch):
    # crossovers measured by benchmarks/engine.py --crossover (CPU, batch 8): ~384^2 for a gain, ~100^2 with curves
    monkeypatch.setattr(fused, "MIN_PIXELS_GAIN", REAL_MIN_PIXELS[0])
    monkeypatch.setattr(fused, "MIN_PIXELS_CURVES", REAL_MIN_PIXELS[1])
    p = EditProgram.from_dict(d)
    whole, tail = _spy(monkeypatch, "tables"), _spy(monkeypatch, "tail_tables")
    out = apply_program(torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(6)), p)
    assert bool(whole or tail) is fuses
    assert out.shape == (1, 3, size, size)
