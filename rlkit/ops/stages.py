"""Every stage formula of the retouch engine, one function per pipeline step (order: :mod:`rlkit.ops.pipeline`).

Each stage takes the linear-light image (an (N,3,H,W) tensor, or :class:`~rlkit.ops.planes.Planes` under
torch.compile) and the per-image slider values (:class:`Params`), and returns the image with its sliders
applied; a stage whose sliders are all at their defaults returns its input untouched. Sliders read through
:meth:`Params.get` are (N,1,1,1) global values plus, where a local adjustment carries them, (N,1,H,W) offset
maps, so every formula is also a local one. All formulas are smooth in the continuous sliders (gradients
through :func:`rlkit.ops.apply_params`); the blur sizes in :data:`STRUCTURAL_PARAMS` are read as floats.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from .blur import gaussian_blur, group_blur
from .color import hue_saturation, luminance
from .params import HSL_BAND_HUES, HSL_BANDS, PARAM_SPECS
from .planes import Planes, add, channels, inplace_ok, mul
from .profiles import Profile, apply_profile
from .ramps import smoothstep

__all__ = ["Params", "STRUCTURAL_PARAMS", "detail", "gain", "calibration", "profile", "tone", "monochrome", "hsl",
           "saturation", "grading", "vignette", "sharpen", "grain"]

#: sliders that set a blur kernel's size or pick a formula: read as Python floats, so they get no gradient in
#: :func:`apply_params`
STRUCTURAL_PARAMS = frozenset({"sharpen_radius", "grain_size", "grain_roughness", "noise_reduction_detail",
                               "color_noise_reduction_detail", "color_noise_reduction_smoothness", "vignette_style"})


class Params:
    """Per-image slider values: global (N,1,1,1) tensors plus local (N,1,H,W) offset maps."""

    def __init__(self, n: int, device: torch.device, values: Mapping[str, torch.Tensor],
                 local: Mapping[str, torch.Tensor], profiles: Sequence[Profile | None] | None = None):
        self.n, self.device, self.values, self.local = n, device, values, local
        #: one profile (or None) per image; None when no image has one
        self.profiles = list(profiles) if profiles is not None and any(p is not None for p in profiles) else None

    def active(self, name: str) -> bool:
        return name in self.values or name in self.local

    def get(self, name: str, *, clip: bool = True) -> torch.Tensor:
        spec = PARAM_SPECS[name]
        v = self.values.get(name)
        if v is None:
            v = torch.full((self.n, 1, 1, 1), spec.default, device=self.device)
        if name in self.local:
            v = v + self.local[name]
            if clip:
                v = v.clamp(spec.lo, spec.hi)
        return v

    def images(self, i: int, j: int) -> Params:
        """The parameters of images i..j-1 (maps shared by the batch, of size 1, stay shared)."""
        def cut(t: torch.Tensor) -> torch.Tensor:
            return t[i:j] if t.shape[0] == self.n else t
        return Params(j - i, self.device, {k: cut(v) for k, v in self.values.items()},
                      {k: cut(v) for k, v in self.local.items()}, self.profiles[i:j] if self.profiles else None)

    def scalar(self, name: str) -> list[float]:
        """Per-image Python floats (for structural parameters such as blur radii)."""
        v = self.values.get(name)
        if v is None:
            return [PARAM_SPECS[name].default] * self.n
        return [float(t) for t in v.detach().reshape(-1).cpu()]


def detail(lin: torch.Tensor, P: Params) -> torch.Tensor:
    """Step 2: luminance and colour noise reduction, texture, clarity and dehaze (spatial; blurs)."""
    h, w = lin.shape[-2:]
    size = max(h, w)
    if P.active("noise_reduction"):
        # blend luminance towards a 1.5 px blur; the same offset on R,G,B keeps chroma
        y = luminance(lin)
        s = P.get("noise_reduction") / 100.0 * 0.85
        if P.active("noise_reduction_detail") or P.active("noise_reduction_contrast"):
            lin = add(lin, s * _smoothing(y, P))
        else:
            lin = add(lin, s * (gaussian_blur(y, 1.5) - y))
    if P.active("color_noise_reduction"):
        lin = add(lin, P.get("color_noise_reduction") / 100.0 * _chroma_smoothing(lin, P))
    if P.active("texture"):
        # fine detail (2 px band-pass of luminance) added back with gain texture/100
        y = luminance(lin)
        lin = add(lin, P.get("texture") / 100.0 * (y - gaussian_blur(y, 2.0)))
    if P.active("clarity"):
        # medium-radius local contrast, strongest in the midtones
        y = luminance(lin)
        q = y.clamp(1e-8, 1.0).sqrt()
        lin = add(lin, P.get("clarity") / 100.0 * 0.8 * (4.0 * q * (1.0 - q)) * (y - gaussian_blur(y, size / 40.0)))
    if P.active("dehaze"):
        # + : subtract a smooth dark-channel haze estimate and renormalise; - : blend towards a haze veil
        d = P.get("dehaze") / 100.0
        dark = gaussian_blur(lin.amin(dim=1, keepdim=True), size / 15.0).clamp(0.0, 1.0)
        kp = d.clamp_min(0.0) * 0.9 * dark
        kn = (-d).clamp_min(0.0) * 0.5
        lin = lin.sub(kp).div(1.0 - kp).mul(1.0 - kn).add(kn * 0.8)
    return lin


def _smoothing(y: torch.Tensor, P: Params) -> torch.Tensor:
    """What luminance noise reduction adds at full strength, with its detail and contrast settings.

    Detail d sets the blur: sigma = 1.5 px x 2^((50 - d) / 50) (3 px at 0, 0.75 px at 100; 1.5 px at the
    default 50). Contrast c gives back the structured part of what the blur removes: its own blur at twice the
    radius, times c / 100, so at 100 only the pixel-scale (incoherent) part of the change remains.
    """
    sig = [1.5 * 2.0 ** ((50.0 - d) / 50.0) for d in P.scalar("noise_reduction_detail")]
    change = group_blur(y, sig) - y
    if P.active("noise_reduction_contrast"):
        change = change - P.get("noise_reduction_contrast") / 100.0 * group_blur(change, [2.0 * v for v in sig])
    return change


def _chroma_smoothing(lin: torch.Tensor, P: Params) -> torch.Tensor:
    """Colour noise reduction's change at full strength: chroma (RGB minus luminance) blurred, luminance kept
    (the chroma of every pixel has luminance 0, and so has its blur). Blur sigma = (0.5 + 3 (100 - detail) /
    100) px x 2^((smoothness - 50) / 50): 2 px at the defaults, 0.5-7 px over the ranges."""
    chroma = lin.sub(luminance(lin))
    if isinstance(chroma, Planes):
        chroma = chroma.stack()
    sig = [(0.5 + 3.0 * (100.0 - d) / 100.0) * 2.0 ** ((sm - 50.0) / 50.0)
           for d, sm in zip(P.scalar("color_noise_reduction_detail"), P.scalar("color_noise_reduction_smoothness"))]
    return group_blur(chroma, sig) - chroma


def gain(lin: torch.Tensor, P: Params) -> torch.Tensor:
    """Step 3: exposure (x 2^EV) and white balance as one per-channel gain, normalised to keep grey's luminance."""
    if not (P.active("exposure") or P.active("temperature") or P.active("tint")):
        return lin
    g = torch.exp2(P.get("exposure")) if P.active("exposure") else None
    if P.active("temperature") or P.active("tint"):
        t = P.get("temperature") / 100.0
        m = P.get("tint") / 100.0
        lr = torch.exp2(0.5 * t + 0.25 * m)
        lg = torch.exp2(-0.5 * m)
        lb = torch.exp2(-0.5 * t + 0.25 * m)
        norm = 0.2126 * lr + 0.7152 * lg + 0.0722 * lb
        wb = channels(lin, lr / norm, lg / norm, lb / norm)
        g = wb if g is None else wb.mul(g)
    return mul(lin, g)


_CAL_PRIMARIES = tuple(f"calibration_{c}_{k}" for c in ("red", "green", "blue") for k in ("hue", "saturation"))


def calibration(lin: torch.Tensor, P: Params) -> torch.Tensor:
    """Step 3b: camera calibration: the red / green / blue primaries moved, and a shadow tint.

    A primary e_X (a unit RGB vector) is its grey mean (1/3, 1/3, 1/3) plus its chroma c_X; the moved chroma is
    c'_X = k_X R(theta_X) c_X, rotated about the grey axis by theta_X = 30 deg x hue / 100 (the direction of
    ``hsl_hue_*``: + towards a higher hue angle) and scaled by k_X = 1 + 0.5 saturation / 100. A pixel is
    read as min(r, g, b) grey plus (r - min) of red, (g - min) of green, (b - min) of blue, and each primary's
    share moves with it: rgb + sum_X (x_X - min) (c'_X - c_X). Greys (all shares 0) stay exactly grey, and a
    colour without a primary's share (orange has no blue) ignores that primary's sliders. Shadow tint t moves
    the shadows like a white-balance tint of t / 2 weighted by (1 - sqrt(Y))^2 (+ magenta, - green), keeping
    luminance.
    """
    if any(P.active(n) for n in _CAL_PRIMARIES):
        r_, g_, b_ = lin[:, 0:1], lin[:, 1:2], lin[:, 2:3]
        mn = torch.minimum(torch.minimum(r_, g_), b_)
        out = [r_, g_, b_]
        for i, (c, share) in enumerate(zip(("red", "green", "blue"), (r_, g_, b_))):
            if not (P.active(f"calibration_{c}_hue") or P.active(f"calibration_{c}_saturation")):
                continue
            chroma = [(2.0 if j == i else -1.0) / 3.0 for j in range(3)]
            cross = [(chroma[2] - chroma[1]) / math.sqrt(3.0), (chroma[0] - chroma[2]) / math.sqrt(3.0),
                     (chroma[1] - chroma[0]) / math.sqrt(3.0)]
            a = P.get(f"calibration_{c}_hue") * math.radians(30.0) / 100.0
            k = 1.0 + 0.5 * P.get(f"calibration_{c}_saturation") / 100.0
            amount = share - mn
            out = [o + amount * ((k * torch.cos(a) - 1.0) * ch + k * torch.sin(a) * cr)
                   for o, ch, cr in zip(out, chroma, cross)]
        lin = channels(lin, *out).clamp_min(0.0)
    if P.active("calibration_shadow_tint"):
        y = luminance(lin)
        q = y.clamp(1e-8, 1.0).sqrt()
        m = 0.5 * P.get("calibration_shadow_tint") / 100.0 * (1.0 - q) ** 2
        lr, lg = torch.exp2(0.25 * m), torch.exp2(-0.5 * m)
        norm = (0.2126 + 0.0722) * lr + 0.7152 * lg
        lin = mul(lin, channels(lin, lr / norm, lg / norm, lr / norm))
    return lin


def profile(lin: torch.Tensor, P: Params) -> torch.Tensor:
    """Step 3c: the program's Lightroom profile (look table / RGB table, :mod:`rlkit.ops.profiles`), per image."""
    if P.profiles is None:
        return lin
    if isinstance(lin, Planes):
        lin = lin.stack()
    out = lin.clone()
    for prof in {id(p): p for p in P.profiles if p is not None}.values():
        idx = [i for i, p in enumerate(P.profiles) if p is prof]
        out[idx] = apply_profile(lin[idx], prof)
    return out


_TONE = ("blacks", "whites", "shadows", "highlights", "contrast", "tone_shadows", "tone_darks", "tone_lights",
         "tone_highlights")


def tone(lin: torch.Tensor, P: Params) -> torch.Tensor:
    """Step 4: blacks, whites, shadows, highlights, contrast and the parametric curve on p = sqrt(Y), applied
    by scaling RGB by Y'/Y (hue and saturation kept)."""
    if not any(P.active(n) for n in _TONE):
        return lin
    y = luminance(lin)
    # perceptual luminance p = sqrt(Y), the display-like space HSL and grading use too: a square root and a
    # square cost a fraction of the 1/2.2 and 2.2 powers they replaced (compiled tone stage ~3x cheaper)
    p = y.clamp_min(1e-8).sqrt()
    if P.active("blacks"):  # additive at the bottom: lifts or crushes the black point
        q = p.clamp(0.0, 1.0)
        p = p + 0.15 * (P.get("blacks") / 100.0) * (1.0 - q) ** 3
    if P.active("whites"):  # gain concentrated at the top: moves the white point (+-0.35 stop)
        q = p.clamp(0.0, 1.0)
        p = p * torch.exp2(0.35 * (P.get("whites") / 100.0) * q**4)
    if P.active("shadows"):  # up to +-1.5 stops in the deep shadows, fading out by white
        q = p.clamp(0.0, 1.0)
        p = p * torch.exp2(1.5 * (P.get("shadows") / 100.0) * (1.0 - q) ** 2)
    if P.active("highlights"):  # up to +-0.6 stop above mid grey; also pulls values past white back
        q = p.clamp(0.0, 1.0)
        p = p * torch.exp2(0.6 * (P.get("highlights") / 100.0) * smoothstep(0.45, 1.0, q))
    if P.active("contrast"):  # blend towards (or away from) a smoothstep S-curve; 0 and 1 stay fixed
        q = p.clamp(0.0, 1.0)
        p = p + (P.get("contrast") / 100.0) * (q * q * (3.0 - 2.0 * q) - q)
    zones = ("tone_shadows", "tone_darks", "tone_lights", "tone_highlights")
    if any(P.active(z) for z in zones):
        a, b, c = (P.get(f"tone_{z}_split") / 100.0 for z in ("shadow", "midtone", "highlight"))
        # used in sorted order, as Lightroom keeps them: crossed (e.g. shadow split 41, midtone split 25), a
        # zone's bump had zero width and its slider silently did nothing
        s1 = torch.minimum(torch.minimum(a, b), c)
        s2 = torch.maximum(torch.minimum(a, b), torch.minimum(torch.maximum(a, b), c))
        s3 = torch.maximum(torch.maximum(a, b), c)
        edges = [(0.0 * s1, s1), (s1, s2), (s2, s3), (s3, 1.0 + 0.0 * s3)]

        def bumps(q: torch.Tensor) -> torch.Tensor:
            pin = 4.0 * q * (1.0 - q)  # keeps 0 and 1 fixed
            out = 0.0
            for z, (a, b) in zip(zones, edges):
                if P.active(z):
                    c, half = (a + b) / 2.0, (b - a) / 2.0 + 0.08
                    out = out + 0.25 * (P.get(z) / 100.0) * pin * torch.exp(-(((q - c) / half) ** 2))
            return out

        # keep the curve monotone, as Lightroom's is: strong or opposite neighbouring zones could make
        # q + bumps(q) fall (tone inversion); where its slope would drop below 0.05 the bumps are scaled
        # down per image just enough (the zone sliders are global, so this is a per-image scalar)
        grid = torch.linspace(0.0, 1.0, 257, device=p.device).view(1, 1, 1, -1)
        slope = torch.diff(bumps(grid), dim=-1) * 256.0
        worst = (-slope.amin(dim=-1, keepdim=True)).clamp_min(1e-12)
        scale = (0.95 / worst).clamp(max=1.0)
        p = p + scale * bumps(p.clamp(0.0, 1.0))
    pc = p.clamp_min(0.0)
    y2 = pc * pc
    # rescale RGB by Y'/Y (keeps hue and saturation); the grey term lifts pure black exactly to Y'. For pixels
    # whose brightest channel is near black (below ~16/255), the ratio is held to _TONE_MAX_RATIO and the rest
    # of Y' is added as grey: unbounded, the blacks lift turned shadow noise such as sRGB (0, 0, 1) into vivid
    # blue (0, 0, 154). Brighter pixels, saturated blues with their tiny Y included, keep the full ratio
    r = y2 / y.clamp_min(1e-12)
    rc = r.clamp_max(_TONE_MAX_RATIO)
    w = (lin.amax(dim=1, keepdim=True) * (1.0 / _NEAR_BLACK)).clamp_max(1.0)
    r = rc + w * w * (r - rc)
    return add(mul(lin, r), y2 - y * r)


# 4 stops: above what shadows +100 gives alone (x8 in Y at black)
_TONE_MAX_RATIO = 16.0
_NEAR_BLACK = 0.0052  # linear light of sRGB 16/255


_HSL_CENTRES = [HSL_BAND_HUES[b] for b in HSL_BANDS]


def monochrome(lin: torch.Tensor, P: Params) -> torch.Tensor:
    """Step 4b: black and white. Grey = Rec.709 luminance Y x 2^(sum over bands of w_b(hue) x sat x mix_b / 100)
    (the HSL band weights and saturation of step 5, so greys keep their value and a band at +-100 moves its
    colours' grey by up to one stop); the image is blended to that grey by ``monochrome`` (1: R = G = B). After
    it, HSL, vibrance and saturation find no chroma to act on, as in Lightroom's B&W mode, while colour grading
    still tones the grey."""
    if not P.active("monochrome"):
        return lin
    y = luminance(lin)
    mixers = [b for b in HSL_BANDS if P.active(f"gray_mix_{b}")]
    if mixers:
        hue, sat = hue_saturation(lin.clamp_min(1e-6).sqrt())
        ws = dict(zip(HSL_BANDS, _band_weights(hue)))
        stops = sum(ws[b] * sat * (P.get(f"gray_mix_{b}") / 100.0) for b in mixers)
        y = y * torch.exp2(stops)
    m = P.get("monochrome")
    return add(mul(lin, 1.0 - m), m * y)


def _band_weights(hue: torch.Tensor) -> list[torch.Tensor]:
    """Piecewise-linear partition of unity over the 8 band centres (circular)."""
    out = []
    n = len(_HSL_CENTRES)
    for i, c in enumerate(_HSL_CENTRES):
        prev_c = _HSL_CENTRES[i - 1] - (360.0 if i == 0 else 0.0)
        next_c = _HSL_CENTRES[(i + 1) % n] + (360.0 if i == n - 1 else 0.0)
        d = hue - c
        d = d - torch.round(d * (1.0 / 360.0)) * 360.0  # wrapped to [-180, 180] (3x cheaper than remainder)
        # rising edge for d < 0, falling edge for d >= 0 (one of the two terms is 0): the values of
        # where(d < 0, 1 + d / rise, 1 - d / fall) without where (slow on CPU: ~4 passes)
        w = 1.0 - d.clamp(max=0.0).neg() / (c - prev_c) - d.clamp(min=0.0) / (next_c - c)
        out.append(w.clamp(0.0, 1.0))
    return out


def hsl(lin: torch.Tensor, P: Params) -> torch.Tensor:
    """Step 5: 8-band HSL: hue rotation about the grey axis, chroma scale and luminance gain, per band weight
    (times saturation, so greys never move)."""
    names = [(k, b) for b in HSL_BANDS for k in ("hue", "saturation", "luminance")]
    if not any(P.active(f"hsl_{k}_{b}") for k, b in names):
        return lin
    # bands are defined on the display-like image; linear values below 1e-6 (sRGB 1.3e-5) count as 0 there:
    # sqrt's slope near 0 turned last-bit differences (e.g. a blur's, by batch size) into 1e-5 output changes
    hue, sat = hue_saturation(lin.clamp_min(1e-6).sqrt())
    ws = _band_weights(hue)
    theta = scale = lum = None
    for b, w in zip(HSL_BANDS, ws):
        w = w * sat
        for kind in ("hue", "saturation", "luminance"):
            n = f"hsl_{kind}_{b}"
            if not P.active(n):
                continue
            term = w * (P.get(n) / 100.0)
            if kind == "hue":
                theta = term if theta is None else theta + term
            elif kind == "saturation":
                scale = term if scale is None else scale + term
            else:
                lum = term if lum is None else lum + term
    m = lin.mean(dim=1, keepdim=True)
    c = lin.sub(m)
    if theta is not None:  # rotate chroma about the grey axis by up to 30 degrees
        a = theta * math.radians(30.0)
        cr, cg, cb = c[:, 0:1], c[:, 1:2], c[:, 2:3]
        cross = channels(c, cb - cg, cr - cb, cg - cr).mul(1.0 / math.sqrt(3.0))
        c = c.mul(torch.cos(a)).add(cross.mul(torch.sin(a)))
    if scale is not None:
        c = c.mul(1.0 + scale)
    out = c.add(m)
    if lum is not None:
        out = out.mul(torch.exp2(lum))
    return out


def saturation(lin: torch.Tensor, P: Params) -> torch.Tensor:
    """Step 6: vibrance and saturation, chroma scaled around luminance."""
    if not (P.active("saturation") or P.active("vibrance")):
        return lin
    y = luminance(lin)
    f = None
    if P.active("saturation"):
        f = 1.0 + P.get("saturation") / 100.0
    if P.active("vibrance"):  # saturation that fades out for already saturated pixels
        mx = lin.amax(dim=1, keepdim=True)
        mn = lin.amin(dim=1, keepdim=True)
        s = ((mx - mn) / mx.clamp_min(1e-6)).clamp(0.0, 1.0)
        fv = 1.0 + P.get("vibrance") / 100.0 * (1.0 - s)
        f = fv if f is None else f * fv
    if inplace_ok(lin):
        return lin.sub_(y).mul_(f).add_(y)
    return lin.sub(y).mul(f).add(y)


_ZONES = ("shadow", "midtone", "highlight", "global")


def _hue_vector(hue_deg: torch.Tensor, like: Planes | torch.Tensor | None = None) -> Planes | torch.Tensor:
    h = torch.deg2rad(hue_deg)
    return channels(like, torch.cos(h), torch.cos(h - 2.0943951), torch.cos(h - 4.1887902))


def grading(lin: torch.Tensor, P: Params) -> torch.Tensor:
    """Step 7: colour grading: shadow / midtone / highlight / global tints and luminance shifts."""
    act = [z for z in _ZONES if P.active(f"grade_{z}_saturation") or P.active(f"grade_{z}_luminance")]
    if not act:
        return lin
    q = luminance(lin).clamp(1e-8, 1.0).sqrt()
    if P.active("grade_balance"):
        q = q.clamp_min(1e-6) ** torch.exp2(-P.get("grade_balance") / 100.0)
    w = {"shadow": (1.0 - q) ** 2, "midtone": 2.0 * q * (1.0 - q), "highlight": q * q}
    if P.active("grade_blending"):
        gamma = torch.exp2((50.0 - P.get("grade_blending")) / 50.0)
        ww = {k: v.clamp_min(1e-8) ** gamma for k, v in w.items()}
        tot = ww["shadow"] + ww["midtone"] + ww["highlight"]
        w = {k: v / tot for k, v in ww.items()}
    tint = 1.0
    stops = 0.0
    for z in act:
        wz = w.get(z, 1.0)
        sat = P.get(f"grade_{z}_saturation") / 100.0
        tint = _hue_vector(P.get(f"grade_{z}_hue"), lin).mul(wz * 0.3 * sat).add(tint)
        stops = stops + wz * 0.5 * P.get(f"grade_{z}_luminance") / 100.0
    return mul(lin, tint.mul(torch.exp2(stops)))


def vignette(lin: torch.Tensor, P: Params) -> torch.Tensor:
    """Step 8a: post-crop vignette, a radial gain of up to +-1.5 stops (style 1, highlight priority).

    Roundness rho (-100..100): distance r = ((|a_x x|^p + |a_y y|^p) / 2)^(1/p) over frame coordinates
    x, y in [-1, 1]; p = 2 x 4^max(0, -rho/100) (up to 8: a rounded rectangle), a_x, a_y move from 1 (an
    ellipse fitting the frame) to side / mean side (a circle) as rho goes to +100. Highlight contrast h keeps a
    darkening vignette off bright tones: the stops x (1 - h/100 smoothstep(0.5, 1, sqrt(Y))). Style 2, colour
    priority: a brightening gain is held where it would push the brightest channel past 1 (no clipped hue
    shifts). Style 3, paint overlay: a blend towards black (-) or white (+) by 0.8 |amount| / 100 x the ramp.
    """
    if not P.active("vignette_amount"):
        return lin
    h, w = lin.shape[-2:]
    xs = (torch.arange(w, device=lin.device, dtype=torch.float32) + 0.5) / w * 2.0 - 1.0
    ys = (torch.arange(h, device=lin.device, dtype=torch.float32) + 0.5) / h * 2.0 - 1.0
    if P.active("vignette_roundness"):
        rho = P.get("vignette_roundness") / 100.0
        side = (w + h) / 2.0
        ax, ay = 1.0 + rho.clamp_min(0.0) * (w / side - 1.0), 1.0 + rho.clamp_min(0.0) * (h / side - 1.0)
        p = 2.0 * torch.pow(4.0, (-rho).clamp_min(0.0))
        r = (((ax * xs.view(1, 1, 1, w)).abs() ** p + (ay * ys.view(1, 1, h, 1)).abs() ** p) / 2.0) ** (1.0 / p)
    else:
        r = torch.sqrt(xs.view(1, 1, 1, w) ** 2 + ys.view(1, 1, h, 1) ** 2) / math.sqrt(2.0)  # 0 centre, 1 corner
    r0 = 0.15 + 0.6 * P.get("vignette_midpoint") / 100.0
    width = 0.05 + 0.9 * P.get("vignette_feather") / 100.0
    t = ((r - r0) / width).clamp(0.0, 1.0)
    v = t * t * (3.0 - 2.0 * t)
    if not (P.active("vignette_style") or P.active("vignette_highlight_contrast")):
        return mul(lin, torch.exp2(1.5 * P.get("vignette_amount") / 100.0 * v))
    amount = P.get("vignette_amount") / 100.0
    stops = 1.5 * amount * v
    styles = [min(3, max(1, round(s))) for s in P.scalar("vignette_style")]
    out = None
    for style in sorted(set(styles)):
        if style == 1:
            s1 = stops
            if P.active("vignette_highlight_contrast"):
                q = luminance(lin).clamp(1e-8, 1.0).sqrt()
                keep = P.get("vignette_highlight_contrast") / 100.0 * smoothstep(0.5, 1.0, q)
                s1 = stops * (1.0 - keep * (amount < 0).float())
            o = lin.mul(torch.exp2(s1))  # (not in place: each style reads the same input)
        elif style == 2:
            g = torch.exp2(stops)
            room = 1.0 / lin.amax(dim=1, keepdim=True).clamp_min(1e-6)
            o = lin.mul(torch.minimum(g, torch.maximum(room, torch.ones_like(g))))
        else:
            k = 0.8 * amount.abs() * v
            o = lin.mul(1.0 - k).add(k * (amount > 0).float())
        sel = torch.tensor([float(s == style) for s in styles], device=lin.device).view(-1, 1, 1, 1)
        o = o if len(set(styles)) == 1 else o.mul(sel)
        out = o if out is None else out.add(o)
    return out


def sharpen(lin: torch.Tensor, P: Params) -> torch.Tensor:
    """Step 8b: unsharp mask of luminance with ``sharpen_radius``."""
    if not P.active("sharpening"):
        return lin
    y = luminance(lin)
    detail = y - group_blur(y, P.scalar("sharpen_radius"))
    if P.active("sharpen_detail"):
        # below 25: strong edges damped, d / (1 + a |d| / 0.05); above 25: fine texture boosted, d (1 + b e^(-|d|/0.02))
        dd = P.get("sharpen_detail")
        a, b = ((25.0 - dd) / 25.0).clamp_min(0.0), ((dd - 25.0) / 75.0).clamp_min(0.0)
        mag = detail.abs()
        detail = detail * (1.0 + b * torch.exp(-mag / 0.02)) / (1.0 + a * mag / 0.05)
    if P.active("sharpen_masking"):
        # edge mask: the gradient magnitude of a 1 px blur of Y, ramped over [tau / 2, tau], tau = 0.1 masking / 100
        yb = gaussian_blur(y, 1.0)
        gx = F.pad(yb, (1, 1, 0, 0), mode="replicate")
        gy = F.pad(yb, (0, 0, 1, 1), mode="replicate")
        grad = (((gx[..., 2:] - gx[..., :-2]) * 0.5) ** 2 + ((gy[..., 2:, :] - gy[..., :-2, :]) * 0.5) ** 2).sqrt()
        tau = (0.1 * P.get("sharpen_masking") / 100.0).clamp_min(1e-6)
        detail = detail * smoothstep(0.5 * tau, tau, grad)
    return add(lin, P.get("sharpening") / 100.0 * detail)


def grain(x: torch.Tensor, P: Params, seeds: list[int]) -> torch.Tensor:
    """Step 10b (display space, after the curves): seeded blurred Gaussian grain, strongest in the midtones."""
    if not P.active("grain_amount"):
        return x
    n, _, h, w = x.shape
    noise = torch.empty(n, 1, h, w, device=x.device)
    for i, s in enumerate(seeds):
        g = torch.Generator(device=x.device).manual_seed(int(s))
        noise[i] = torch.randn(1, h, w, generator=g, device=x.device)
    sizes = P.scalar("grain_size")
    sig = [0.3 + 1.7 * s / 100.0 for s in sizes]
    rough = P.scalar("grain_roughness") if P.active("grain_roughness") else None
    if rough is not None:  # roughness below 50: a wider blur, 2^((50 - r) / 50) times the size's sigma
        sig = [s * 2.0 ** (max(0.0, 50.0 - r) / 50.0) for s, r in zip(sig, rough)]
    white = noise
    noise = group_blur(noise, sig)
    # renormalise: a Gaussian blur of white noise with sigma s has std ~ 1 / (2 sqrt(pi) s)
    std = torch.tensor([min(1.0, 1.0 / (2.0 * math.sqrt(math.pi) * s)) for s in sig], device=x.device)
    noise = noise / std.view(n, 1, 1, 1)
    if rough is not None and max(rough) > 50.0:
        # roughness above 50: k = (r - 50) / 100 of the unblurred (pixel-fine) noise mixed in, std kept ~1
        k = torch.tensor([max(0.0, r - 50.0) / 100.0 for r in rough], device=x.device).view(n, 1, 1, 1)
        noise = ((1.0 - k) * noise + k * white) / ((1.0 - k) ** 2 + k ** 2).sqrt()
    yd = (0.2126 * x[:, 0:1] + 0.7152 * x[:, 1:2] + 0.0722 * x[:, 2:3]).clamp(0.0, 1.0)
    return x + P.get("grain_amount") / 100.0 * 0.1 * noise * (0.3 + 2.8 * yd * (1.0 - yd))
