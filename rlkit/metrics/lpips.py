"""LPIPS (Zhang et al., CVPR 2018) without torchvision: the ``lpips`` package's network and weights.

LPIPS compares unit-normalised activations of an ImageNet trunk (AlexNet or VGG16) at five layers, weighs
the squared differences per channel with learned 1x1 layers, averages them over space and sums the layers.
The reference implementation, the ``lpips`` package, imports torchvision (which cannot be installed beside
every torch build) only to build the trunk. This module builds the same trunk layers in plain torch (the
layer lists of torchvision's ``alexnet().features`` / ``vgg16().features``, so torchvision checkpoints load),
and applies the package's computation: its v0.1 scaling layer, normalisation, linear layers and averaging.

Weights:

- the learned linear layers ship inside the ``lpips`` package (``pip install lpips --no-deps`` installs them
  without torchvision; they are read from its folder, the package is not imported), or pass ``lin_weights``;
- the trunk is torchvision's ImageNet checkpoint (``alexnet-owt-7be5be79.pth`` / ``vgg16-397923af.pth``),
  found in torch's hub cache (``torch.hub.get_dir()/checkpoints``, where torchvision saves it), or given as
  ``trunk_weights``: a ``.pth`` / ``.safetensors`` path or a hub id ``org/name:file`` (from the local hub
  cache; nothing is downloaded when ``HF_HUB_OFFLINE=1``).

When a piece is missing, :func:`load_lpips` raises :class:`LPIPSUnavailable` saying which and how to supply it.
Inputs are sRGB in [0, 1], (N, 3, H, W); the result is one distance per image (lower = more similar).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from huggingface_hub import hf_hub_download
from safetensors.torch import load_file
from torch import nn

__all__ = ["LPIPS", "LPIPSUnavailable", "load_lpips", "lpips_status", "TRUNK_FILES", "trunk_features"]

TRUNK_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}
_CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}
_SLICES = {"alex": (0, 2, 5, 8, 10, 12), "vgg": (0, 4, 9, 16, 23, 30)}  # layer boundaries of the 5 taps


class LPIPSUnavailable(RuntimeError):
    """LPIPS cannot run here: the message names the missing weights and how to provide them."""


def trunk_features(net: str) -> nn.Sequential:
    """The trunk's convolutional layers, indexed as torchvision's ``alexnet().features`` / ``vgg16().features``."""
    if net == "alex":
        return nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
    if net == "vgg":
        layers: list[nn.Module] = []
        c_in = 3
        for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, int(v), 3, padding=1), nn.ReLU(inplace=True)]
                c_in = int(v)
        return nn.Sequential(*layers)
    raise ValueError(f"LPIPS: net must be 'alex' or 'vgg', got {net!r}")


class LPIPS(nn.Module):
    """The LPIPS v0.1 distance (see module doc). ``forward(x, y)`` with sRGB in [0, 1] -> (N,) distances."""

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        self.net = net
        self.features = trunk_features(net)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in _CHANNELS[net])
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.description = f"LPIPS v0.1 ({net})"
        self.requires_grad_(False)
        self.eval()

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        b = _SLICES[self.net]
        out = []
        for k in range(5):
            for i in range(b[k], b[k + 1]):
                x = self.features[i](x)
            out.append(x)
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"LPIPS: expected two (N, 3, H, W) batches of one shape, got {tuple(x.shape)} and "
                             f"{tuple(y.shape)}")
        p = next(self.parameters())
        x, y = x.to(p), y.to(p)
        fx = self._taps(((2 * x - 1) - self.shift) / self.scale)
        fy = self._taps(((2 * y - 1) - self.shift) / self.scale)
        total = torch.zeros(x.shape[0], dtype=p.dtype, device=p.device)
        for lin, a, b in zip(self.lins, fx, fy):
            a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + lin((a - b) ** 2).mean((2, 3)).flatten()
        return total


def _lpips_package_weights(net: str) -> Path | None:
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        return None
    f = Path(list(spec.submodule_search_locations)[0]) / "weights" / "v0.1" / f"{net}.pth"
    return f if f.is_file() else None


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        return load_file(str(path))
    obj = torch.load(str(path), map_location="cpu", weights_only=True)
    return obj.get("state_dict", obj) if isinstance(obj, dict) else obj


def _trunk_path(net: str, trunk_weights: str | Path | None) -> tuple[Path | None, str]:
    if trunk_weights is not None:
        p = Path(trunk_weights)
        if p.is_file():
            return p, ""
        spec = str(trunk_weights)
        if ":" in spec and "/" in spec.split(":", 1)[0] and not p.exists():
            repo, fname = spec.split(":", 1)
            try:
                return Path(hf_hub_download(repo, fname)), ""
            except Exception as exc:  # noqa: BLE001 - offline / not cached: reported as unavailable
                return None, f"trunk weights {spec!r} are not in the local hub cache ({type(exc).__name__})"
        return None, f"trunk weights file {p} does not exist"
    cached = Path(torch.hub.get_dir()) / "checkpoints" / TRUNK_FILES[net]
    if cached.is_file():
        return cached, ""
    return None, (f"no ImageNet {net} trunk: torchvision's checkpoint {TRUNK_FILES[net]} is not in {cached.parent}; "
                  f"copy it there or pass trunk_weights=PATH (.pth/.safetensors) or 'org/name:file' (hub cache)")


def lpips_status(net: str = "alex", *, trunk_weights: str | Path | None = None,
                 lin_weights: str | Path | None = None) -> tuple[bool, str]:
    """(available, why not) for :func:`load_lpips` with these arguments."""
    trunk_features(net)  # checks the name
    if lin_weights is None and _lpips_package_weights(net) is None:
        return False, ("the LPIPS linear layers ship in the `lpips` package, which is not installed "
                       "(pip install lpips --no-deps; torchvision is not needed) - or pass lin_weights=PATH")
    if lin_weights is not None and not Path(lin_weights).is_file():
        return False, f"LPIPS linear-layer weights {lin_weights} do not exist"
    path, why = _trunk_path(net, trunk_weights)
    return (path is not None), why


def load_lpips(net: str = "alex", *, trunk_weights: str | Path | None = None, lin_weights: str | Path | None = None,
               device: str | torch.device = "cpu") -> LPIPS:
    """An :class:`LPIPS` with the trunk and linear weights loaded (see module doc); LPIPSUnavailable if missing."""
    ok, why = lpips_status(net, trunk_weights=trunk_weights, lin_weights=lin_weights)
    if not ok:
        raise LPIPSUnavailable(f"LPIPS unavailable: {why}")
    model = LPIPS(net)
    trunk, _ = _trunk_path(net, trunk_weights)
    state = _read_state(trunk)  # type: ignore[arg-type]
    feats = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    if not feats:  # a checkpoint of the features alone
        feats = state
    try:
        model.features.load_state_dict(feats, strict=True)
    except RuntimeError as exc:
        raise LPIPSUnavailable(f"LPIPS unavailable: trunk weights {trunk} do not fit torchvision's {net}: "
                               f"{str(exc).splitlines()[0]}") from None
    lin_path = Path(lin_weights) if lin_weights is not None else _lpips_package_weights(net)
    lin = _read_state(lin_path)  # type: ignore[arg-type]
    for k, layer in enumerate(model.lins):
        key = f"lin{k}.model.1.weight"
        if key not in lin:
            raise LPIPSUnavailable(f"LPIPS unavailable: {lin_path} has no {key!r} (not an LPIPS v0.1 weight file)")
        layer.weight.data.copy_(lin[key])
    model.description = f"LPIPS v0.1 ({net}; trunk {trunk.name}; linear layers {lin_path})"  # type: ignore[union-attr]
    return model.to(device)
