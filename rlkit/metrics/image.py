"""Full-reference image metrics on torch batches: L1, L2, PSNR, SSIM, CIELAB Delta E 1976 and CIEDE2000.

Inputs are (N, 3, H, W) (or (3, H, W)) float sRGB tensors in [0, 1], on any device; outputs are (N,) float
tensors (float64 for the colour differences). Definitions: PSNR with peak 1; SSIM of Wang et al. (IEEE TIP
2004) with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, averaged over the valid (uncropped)
area and the three channels, the same numbers as ``skimage.metrics.structural_similarity(...,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=...)``; CIELAB with
the sRGB primaries and D65/2-degree white as in ``skimage.color.rgb2lab``; CIEDE2000 per Sharma, Wu &
Dalal (2005). Colour differences are averaged over pixels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from rlkit._mkl_warmup import warm_up_mkl_vml
from rlkit.metrics._checks import as_image_batch

warm_up_mkl_vml()  # MKL's first-call dispatch race gives low-accuracy exp/log/sqrt otherwise (see the module)

__all__ = ["l1", "l2", "psnr", "ssim", "rgb_to_lab", "delta_e76", "delta_e2000"]


def _pair(a: object, b: object) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = as_image_batch(a, "pred"), as_image_batch(b, "target")
    if x.shape != y.shape:
        raise ValueError(f"pred has shape {tuple(x.shape)} but target has shape {tuple(y.shape)}; they must match")
    return x, y.to(x.device)


def l1(pred: object, target: object) -> torch.Tensor:
    """Mean absolute difference per image (RetouchEval's L1 to the expert edit)."""
    x, y = _pair(pred, target)
    return (x - y).abs().flatten(1).mean(1)


def l2(pred: object, target: object) -> torch.Tensor:
    """Mean squared difference per image (RetouchEval's L2; take the square root for RMSE)."""
    x, y = _pair(pred, target)
    return (x - y).pow(2).flatten(1).mean(1)


def psnr(pred: object, target: object) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB with data range 1: 10 log10(1 / MSE); +inf for identical images."""
    mse = l2(pred, target).to(torch.float64)
    return 10.0 * torch.log10(1.0 / mse)


def _gauss1d(sigma: float, radius: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).to(dtype=dtype, device=device)


def ssim(pred: object, target: object, *, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Structural similarity per image (Wang et al. 2004), Gaussian window, mean over channels and valid area."""
    x, y = _pair(pred, target)
    radius = int(3.5 * sigma + 0.5)  # scipy.ndimage truncate=3.5, as skimage
    win = 2 * radius + 1
    if min(x.shape[-2:]) < win:
        raise ValueError(f"ssim: images must be at least {win}x{win} for sigma={sigma}, got {tuple(x.shape[-2:])}")
    dt = torch.float64 if x.dtype == torch.float64 else torch.float32
    x, y = x.to(dt), y.to(dt)
    n, c, h, w = x.shape
    g = _gauss1d(sigma, radius, dt, x.device)
    kh = g.view(1, 1, win, 1).expand(5 * c, 1, win, 1)
    kw = g.view(1, 1, 1, win).expand(5 * c, 1, 1, win)
    stack = torch.cat([x, y, x * x, y * y, x * y], 1)  # (N, 5C, H, W)
    f = F.conv2d(F.conv2d(stack, kh, groups=5 * c), kw, groups=5 * c)  # valid filtering == skimage's crop
    mx, my, mxx, myy, mxy = f.split(c, 1)
    vx, vy, cxy = mxx - mx * mx, myy - my * my, mxy - mx * my
    c1, c2 = k1**2, k2**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1)


_XYZ_FROM_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_WHITE_D65 = (0.95047, 1.0, 1.08883)


def rgb_to_lab(images: object) -> torch.Tensor:
    """sRGB in [0, 1] (N, 3, H, W) -> CIELAB (N, 3, H, W) float64, D65 / 2-degree observer (as skimage)."""
    x = as_image_batch(images, "images").to(torch.float64)
    lin = torch.where(x > 0.04045, ((x + 0.055) / 1.055) ** 2.4, x / 12.92)
    m = torch.tensor(_XYZ_FROM_RGB, dtype=torch.float64, device=x.device)
    xyz = torch.einsum("ij,njhw->nihw", m, lin)
    xyz = xyz / torch.tensor(_WHITE_D65, dtype=torch.float64, device=x.device).view(1, 3, 1, 1)
    f = torch.where(xyz > 0.008856, torch.pow(xyz.clamp(min=0), 1.0 / 3.0), 7.787 * xyz + 16.0 / 116.0)
    fx, fy, fz = f.unbind(1)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], 1)


def delta_e76(pred: object, target: object) -> torch.Tensor:
    """Mean CIE76 colour difference per image: Euclidean distance in CIELAB (JarvisArt's perceptual term)."""
    x, y = _pair(pred, target)
    return (rgb_to_lab(x) - rgb_to_lab(y)).pow(2).sum(1).sqrt().flatten(1).mean(1)


def _ciede2000(lab1: torch.Tensor, lab2: torch.Tensor) -> torch.Tensor:
    L1, a1, b1 = lab1.unbind(1)
    L2, a2, b2 = lab2.unbind(1)
    cbar = 0.5 * (torch.hypot(a1, b1) + torch.hypot(a2, b2))
    c7 = cbar**7
    g = 0.5 * (1 - torch.sqrt(c7 / (c7 + 25.0**7)))
    a1p, a2p = a1 * (1 + g), a2 * (1 + g)
    c1p, c2p = torch.hypot(a1p, b1), torch.hypot(a2p, b2)
    h1p = torch.atan2(b1, a1p) % (2 * math.pi)
    h2p = torch.atan2(b2, a2p) % (2 * math.pi)
    dl = L2 - L1
    dc = c2p - c1p
    cc = c1p * c2p
    dh = h2p - h1p
    dh = torch.where(dh > math.pi, dh - 2 * math.pi, dh)
    dh = torch.where(dh < -math.pi, dh + 2 * math.pi, dh)
    dh = torch.where(cc == 0, torch.zeros_like(dh), dh)
    dH = 2 * torch.sqrt(cc) * torch.sin(dh / 2)
    lbar = 0.5 * (L1 + L2)
    cbarp = 0.5 * (c1p + c2p)
    hsum = h1p + h2p
    far = (h1p - h2p).abs() > math.pi
    hbar = torch.where(far & (hsum < 2 * math.pi), hsum + 2 * math.pi, torch.where(far, hsum - 2 * math.pi, hsum))
    hbar = torch.where(cc == 0, hsum * 2, hbar) * 0.5
    t = (1 - 0.17 * torch.cos(hbar - math.radians(30)) + 0.24 * torch.cos(2 * hbar)
         + 0.32 * torch.cos(3 * hbar + math.radians(6)) - 0.20 * torch.cos(4 * hbar - math.radians(63)))
    sl = 1 + 0.015 * (lbar - 50) ** 2 / torch.sqrt(20 + (lbar - 50) ** 2)
    sc = 1 + 0.045 * cbarp
    sh = 1 + 0.015 * cbarp * t
    c7p = cbarp**7
    rc = 2 * torch.sqrt(c7p / (c7p + 25.0**7))
    dtheta = math.radians(30) * torch.exp(-(((torch.rad2deg(hbar) - 275) / 25) ** 2))
    rt = -torch.sin(2 * dtheta) * rc
    lt, ct, ht = dl / sl, dc / sc, dH / sh
    return torch.sqrt((lt**2 + ct**2 + ht**2 + rt * ct * ht).clamp(min=0))


def delta_e2000(pred: object, target: object) -> torch.Tensor:
    """Mean CIEDE2000 colour difference per image (kL = kC = kH = 1), Sharma et al. (2005)."""
    x, y = _pair(pred, target)
    return _ciede2000(rgb_to_lab(x), rgb_to_lab(y)).flatten(1).mean(1)
