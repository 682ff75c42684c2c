"""rlkit.ops.fastmath against float64 numpy references written out independently (IEC 61966-2-1 sRGB)."""

import math
import os

import numpy as np
import pytest
import torch

from rlkit.ops import fastmath
from rlkit.ops.fastmath import (
    gain_map,
    gain_map_reference,
    linear_to_srgb_fast,
    srgb_to_linear_fast,
)

KNEE_X, KNEE_L = 0.04045, 0.0031308


def _decode(x: np.ndarray) -> np.ndarray:
    return np.where(x <= KNEE_X, x / 12.92, ((np.maximum(x, KNEE_X) + 0.055) / 1.055) ** 2.4)


def _encode(v: np.ndarray) -> np.ndarray:
    return np.where(v <= KNEE_L, v * 12.92, 1.055 * np.maximum(v, KNEE_L) ** (1 / 2.4) - 0.055)


def _gain_ref(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """encode(clamp(max(decode(x), 0) * g, 0, 1)) in float64 on the float32 inputs."""
    return _encode(np.clip(np.maximum(_decode(x.astype(np.float64)), 0.0) * g, 0.0, 1.0))


def _dense_x() -> np.ndarray:
    """Every x in [0, 1] at 1e-5 steps, plus float32 neighbours of the sRGB knees."""
    grid = np.arange(0, 100001, dtype=np.float64) * 1e-5
    edges = []
    for k in (KNEE_X, KNEE_L * 12.92, 1.0):
        c = np.float32(k)
        edges += [c, np.nextafter(c, np.float32(0)), np.nextafter(c, np.float32(2))]
    return np.concatenate([grid, edges]).astype(np.float32)


def approx_gain(x: torch.Tensor, g) -> torch.Tensor:
    """The kernel gain_map runs under torch.compile, evaluated eagerly."""
    g = torch.as_tensor(g, dtype=torch.float32)
    return fastmath._gain_map_approx(x.float(), fastmath._gain_params(g))


GAINS = np.concatenate([2.0 ** np.linspace(-12, 12, 49), [1.0, 12.92 / KNEE_X, 12.92 / KNEE_X * 1.0001,
                                                          0.9999999, 1.0000001, 2.0 ** -15, 2.0 ** 16]])


def test_gain_map_matches_float64_reference_everywhere_in_0_1():
    x = _dense_x()
    g32 = GAINS.astype(np.float32)
    xt = torch.from_numpy(x).view(1, 1, 1, -1).expand(len(g32), 1, 1, -1)
    ref = _gain_ref(x[None], g32.astype(np.float64)[:, None])
    for fn in (approx_gain, gain_map):  # the compiled kernel's maths, and the eager (exact) path
        out = fn(xt, torch.from_numpy(g32).view(-1, 1, 1, 1)).numpy()[:, 0, 0]
        err = np.abs(out - ref)
        worst = np.unravel_index(err.argmax(), err.shape)
        assert err.max() <= 1e-6, f"{fn.__name__}: gain {g32[worst[0]]}, x {x[worst[1]]}: error {err.max():.3g}"


@pytest.mark.parametrize("g", [1 / 256, 0.3, 1.0, 3.0, 256.0, 1000.0])
def test_gain_map_band_edges_and_thresholds(g):
    # the per-channel thresholds: x g / 12.92 = 0.0031308 (toe out), x = 0.04045 (toe in),
    # decode(x) g = 0.0031308 and decode(x) g = 1 (saturation), each with float32 neighbours
    t = [KNEE_L * 12.92 / g, KNEE_X, 1.055 * (KNEE_L / g) ** (1 / 2.4) - 0.055, 12.92 / g,
         1.055 * (1 / g) ** (1 / 2.4) - 0.055]
    x = []
    for v in t:
        c = np.float32(v)
        for _ in range(4):
            x += [c]
            c = np.nextafter(c, np.float32(9))
        c = np.float32(v)
        for _ in range(3):
            c = np.nextafter(c, np.float32(-9))
            x += [c]
    x = np.array(x, dtype=np.float32)
    out = approx_gain(torch.from_numpy(x), g).numpy()
    np.testing.assert_allclose(out, _gain_ref(x, float(np.float32(g))), rtol=0, atol=1e-6)


def test_gain_map_out_of_range_inputs():
    x = np.array([-1.0, -1e-3, -0.0, 1.0, 1.5, 3.0, 8.0, math.inf, -math.inf], dtype=np.float32)
    for fn in (approx_gain, gain_map):
        for g in (0.01, 0.5, 2.0, 40.0):
            out = fn(torch.from_numpy(x), torch.tensor(g)).numpy()
            np.testing.assert_allclose(out, _gain_ref(x, float(np.float32(g))), rtol=0, atol=1e-6)
        assert fn(torch.tensor([-5.0, -math.inf]), torch.tensor(3.0)).tolist() == [0.0, 0.0]
        assert fn(torch.tensor([math.inf]), torch.tensor(0.1)).item() == pytest.approx(1.0, abs=1e-6)
        assert math.isnan(fn(torch.tensor([math.nan]), torch.tensor(2.0)).item())


def poly_gain(x: torch.Tensor, g) -> torch.Tensor | None:
    """The small-gain kernel the engine compiles (band polynomial fitted per call), evaluated eagerly."""
    params = fastmath.gain_map_poly_params(torch.as_tensor(g, dtype=torch.float32))
    return None if params is None else fastmath.gain_map_poly_kernel(x, *params)


def test_gain_map_poly_matches_float64_reference_for_small_gains():
    x = _dense_x()
    xt = torch.from_numpy(x).view(1, 1, 1, -1).expand(1, 3, 1, -1).contiguous()
    covered = []
    for ev in np.linspace(-6, 2, 33):
        for wb in (1.0, 1.3):
            g = np.array([2.0 ** ev * wb, 2.0 ** ev, 2.0 ** ev / wb], dtype=np.float32)  # per-channel gains
            out = poly_gain(xt, torch.from_numpy(g).view(1, 3, 1, 1))
            if out is None:
                continue
            covered.append(ev)
            ref = _gain_ref(x[None], g.astype(np.float64)[:, None])
            err = np.abs(out.numpy()[0, :, 0] - ref)
            assert err.max() <= 1e-6, f"EV {ev}, wb {wb}: x {x[err.max(0).argmax()]} error {err.max():.3g}"
    # every darkening gain and brightening up to about +1 EV takes the polynomial; larger ones the rational
    assert min(covered) == -6 and 1.0 <= max(covered) < 1.6


def test_gain_map_poly_out_of_range_inputs_and_large_gains():
    x = np.array([-1.0, -0.0, 0.02, 0.5, 1.0, 1.5, 8.0, math.inf, -math.inf], dtype=np.float32)
    for g in (1 / 64, 0.7, 1.0, 1.4):
        out = poly_gain(torch.from_numpy(x), torch.tensor([g]))
        np.testing.assert_allclose(out.numpy(), _gain_ref(x, float(np.float32(g))), rtol=0, atol=1e-6)
    assert math.isnan(poly_gain(torch.tensor([math.nan]), torch.tensor([1.2])).item())
    assert fastmath.gain_map_poly_params(torch.tensor([4.0, 1.0])) is None  # +2 EV: needs the rational


def test_gain_map_shapes_dtypes_and_reference_function():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 8, 10, generator=gen)
    g = torch.exp2(torch.randn(2, 3, 1, 1, generator=gen) * 3)
    ref = gain_map_reference(x.double(), g.double())
    np.testing.assert_allclose(ref.numpy(), _gain_ref(x.numpy(), g.double().numpy()), atol=1e-12)
    for out in (gain_map(x, g), approx_gain(x, g)):
        assert out.shape == x.shape and out.dtype == torch.float32
        assert (out.double() - ref).abs().max() <= 1e-6
    assert torch.equal(gain_map(x.double(), g.double()), ref)  # float64: the exact path
    for dt in (torch.float16, torch.bfloat16):
        o = gain_map(x.to(dt), g)
        assert o.dtype == dt
        assert (o.double() - gain_map_reference(x.to(dt).double(), g.double())).abs().max() <= 1e-2
    # one gain per channel for all images, and a scalar gain
    g3 = torch.tensor([0.5, 1.0, 4.0]).view(3, 1, 1)
    for fn in (approx_gain, gain_map):
        assert (fn(x, g3).double() - gain_map_reference(x.double(), g3.double())).abs().max() <= 1e-6
        assert (fn(x, torch.tensor(2.0)).double() - gain_map_reference(x.double(), 2.0)).abs().max() <= 1e-6


@pytest.mark.parametrize("fn", [approx_gain, gain_map])
def test_gain_map_gradient_flows_to_x(fn):
    x = torch.tensor([0.01, 0.03, 0.2, 0.5, 0.8], requires_grad=True)
    g = torch.tensor(1.7)
    fn(x, g).sum().backward()
    xr = x.detach().double().requires_grad_()
    gain_map_reference(xr, g.double()).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xr.grad.numpy(), rtol=1e-4)


def test_gain_map_eager_does_not_touch_its_inputs():
    x = torch.rand(1, 3, 4, 4)
    g = torch.full((1, 3, 1, 1), 2.0)
    x0, g0 = x.clone(), g.clone()
    gain_map(x, g)
    assert torch.equal(x, x0) and torch.equal(g, g0)


@pytest.mark.parametrize(("g", "exc", "msg"), [
    (torch.tensor([1.0, 0.0, 2.0]).view(3, 1, 1), ValueError, "finite and > 0, got 0.0"),
    (torch.tensor([1.0, -2.0, 2.0]).view(3, 1, 1), ValueError, "got -2.0"),
    (torch.tensor([1.0, math.nan, 2.0]).view(3, 1, 1), ValueError, "got nan"),
    (torch.tensor([1.0, math.inf, 2.0]).view(3, 1, 1), ValueError, "got inf"),
    (torch.ones(4, 1, 1), ValueError, "does not broadcast"),
    (torch.ones(2, 1, 3, 1, 1), ValueError, "would enlarge"),
    (torch.ones(3, 1, 1, dtype=torch.int64), TypeError, "floating-point tensor of gains"),
    (2.0, TypeError, "got float"),
])
def test_gain_map_rejects_bad_gains(g, exc, msg):
    with pytest.raises(exc, match=msg):
        gain_map(torch.rand(1, 3, 4, 4), g)


def test_gain_map_rejects_integer_images():
    with pytest.raises(TypeError, match="gain_map: x must be a floating-point tensor, got Tensor of dtype"):
        gain_map(torch.zeros(1, 3, 2, 2, dtype=torch.uint8), torch.ones(1, 3, 1, 1))


def test_gain_params_custom_op_matches_and_passes_opcheck():
    g = torch.exp2(torch.linspace(-9, 9, 6)).view(2, 3, 1, 1)
    assert torch.equal(fastmath._gain_params_op(g), fastmath._gain_params(g))
    torch.library.opcheck(fastmath._gain_params_op, (g,))


def test_srgb_to_linear_fast_matches_reference():
    x = np.concatenate([np.arange(-0.1, 1.0, 1e-5), np.linspace(1.0, 8.385, 20001), _dense_x()]).astype(np.float32)
    ref = _decode(x.astype(np.float64))
    hi = x > KNEE_X
    # the rational (compiled) 7e-7; the eager path's exp(2.4 log b) 1e-6 (8 float32 ulps)
    for fn, tol in ((fastmath._decode_approx, 7e-7), (srgb_to_linear_fast, 1e-6)):
        out = fn(torch.from_numpy(x)).numpy().astype(np.float64)
        assert np.max(np.abs(out - ref)[hi] / ref[hi]) <= tol
        assert np.max(np.abs(out - ref)[~hi]) <= 1e-9
        assert math.isnan(fn(torch.tensor([math.nan])).item())


def test_linear_to_srgb_fast_is_the_clamped_encode():
    v = np.concatenate([np.arange(-0.1, 1.0, 1e-5), [KNEE_L, np.nextafter(np.float32(KNEE_L), np.float32(1)),
                                                    1.0, 1.5, 1e5, 1e30, np.inf, -np.inf]]).astype(np.float32)
    ref = _encode(np.clip(v.astype(np.float64), 0, 1))
    for fn in (fastmath._encode_approx, linear_to_srgb_fast):
        out = fn(torch.from_numpy(v)).numpy().astype(np.float64)
        assert np.max(np.abs(out - ref)) <= 5e-7
        assert math.isnan(fn(torch.tensor([math.nan])).item())


def test_fast_srgb_round_trip_and_dtypes():
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    back = fastmath._encode_approx(fastmath._decode_approx(x))
    assert (back - x).abs().max() <= 1e-6
    assert (linear_to_srgb_fast(srgb_to_linear_fast(x)) - x).abs().max() <= 1e-6
    assert srgb_to_linear_fast(x.half()).dtype == torch.float16
    xd = x.double()
    np.testing.assert_allclose(srgb_to_linear_fast(xd).numpy(), _decode(xd.numpy()), rtol=1e-12)
    np.testing.assert_allclose(linear_to_srgb_fast(xd).numpy(), _encode(xd.numpy()), rtol=1e-12)
    with pytest.raises(TypeError, match="srgb_to_linear_fast: x must be a floating-point tensor"):
        srgb_to_linear_fast(torch.ones(3, dtype=torch.int32))


def test_rational_constants_are_what_the_derivation_gives():
    pytest.importorskip("scipy")
    v = np.geomspace(KNEE_L, 1.0, 20001)
    p, q = fastmath._derive_rational(1 / 2.4, KNEE_L, 1.0)
    stored = np.polyval(fastmath._P_A[::-1], v) / np.polyval(fastmath._Q_A[::-1], v)
    assert np.max(np.abs(np.polyval(p[::-1], v) / np.polyval(q[::-1], v) / stored - 1)) <= 1e-9
    assert np.max(np.abs(stored / v ** (1 / 2.4) - 1)) <= 2e-7
    w = np.geomspace((KNEE_X + 0.055) / 1.055, 8.0, 20001)
    stored_b = np.polyval(fastmath._P_B[::-1], w) / np.polyval(fastmath._Q_B[::-1], w)
    assert np.max(np.abs(stored_b / w ** 2.4 - 1)) <= 2e-7


@pytest.mark.skipif(not os.environ.get("RLKIT_TEST_COMPILE"),
                    reason="torch.compile is slow on small CPUs; set RLKIT_TEST_COMPILE=1")
def test_compiled_matches_eager_and_reference():  # pragma: no cover - opt-in
    x = torch.from_numpy(_dense_x()).view(1, 1, 1, -1).expand(3, 3, 1, -1).contiguous()
    g = torch.exp2(torch.linspace(-8, 8, 9)).view(3, 3, 1, 1)
    out = torch.compile(gain_map, dynamic=False)(x, g)
    assert (out - gain_map(x, g)).abs().max() <= 1e-6  # fused vs unfused multiply-adds
    ref = _gain_ref(x.numpy(), g.double().numpy())
    assert np.abs(out.numpy() - ref).max() <= 1e-6
    s = torch.compile(lambda t: linear_to_srgb_fast(srgb_to_linear_fast(t)), dynamic=False)(x)
    assert (s - x).abs().max() <= 1e-6
