"""rlkit.metrics.lpips against the `lpips` package's own computation, with locally built trunk weights.

The package imports torchvision only to build the trunk (``tv.alexnet(pretrained=...).features``). The
test hands it a minimal ``torchvision.models`` whose ``alexnet`` / ``vgg16`` return the same random trunk
weights we load into ours, written here from torchvision's published layer lists; everything else (scaling,
normalisation, linear layers from the package's weight files, averaging) is the package's code.
"""

import sys
import types

import pytest
import torch
from torch import nn

from rlkit.metrics.lpips import LPIPSUnavailable, load_lpips, lpips_status


def _tv_features(net):
    if net == "alex":  # torchvision.models.alexnet().features
        return nn.Sequential(nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
                             nn.MaxPool2d(kernel_size=3, stride=2), nn.Conv2d(64, 192, kernel_size=5, padding=2),
                             nn.ReLU(inplace=True), nn.MaxPool2d(kernel_size=3, stride=2),
                             nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
                             nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
                             nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
                             nn.MaxPool2d(kernel_size=3, stride=2))
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]  # vgg16 "D"
    layers, c = [], 3
    for v in cfg:
        layers += [nn.MaxPool2d(kernel_size=2, stride=2)] if v == "M" else [nn.Conv2d(c, v, 3, padding=1),
                                                                            nn.ReLU(inplace=True)]
        c = c if v == "M" else v
    return nn.Sequential(*layers)


@pytest.fixture
def package_lpips(monkeypatch, tmp_path):
    """(lpips module, path of a random torchvision-format trunk checkpoint) per net."""
    import importlib.util

    if importlib.util.find_spec("lpips") is None:
        pytest.fail("the lpips package is not installed: pip install lpips --no-deps (it is in the eval extra)")
    ckpts = {}
    for net in ("alex", "vgg"):
        torch.manual_seed({"alex": 1, "vgg": 2}[net])
        feats = _tv_features(net)
        for m in feats:
            if isinstance(m, nn.Conv2d):  # larger than default init so deep activations are not ~0
                nn.init.normal_(m.weight, 0, (2.0 / (m.in_channels * m.kernel_size[0] ** 2)) ** 0.5)
                nn.init.normal_(m.bias, 0, 0.05)
        path = tmp_path / f"{net}.pth"
        torch.save({f"features.{k}": v for k, v in feats.state_dict().items()}, path)
        ckpts[net] = path

    def builder(net):
        def build(pretrained=True, **_):
            f = _tv_features(net)
            state = torch.load(ckpts[net], weights_only=True)
            f.load_state_dict({k[len("features."):]: v for k, v in state.items()})
            return types.SimpleNamespace(features=f)
        return build

    tv = types.ModuleType("torchvision")
    tv.models = types.SimpleNamespace(alexnet=builder("alex"), vgg16=builder("vgg"), squeezenet1_1=None)
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    monkeypatch.setitem(sys.modules, "torchvision.models", tv.models)
    for name in [n for n in sys.modules if n == "lpips" or n.startswith("lpips.")]:
        monkeypatch.delitem(sys.modules, name)
    import lpips

    return lpips, ckpts


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_equals_the_package_with_the_same_weights(package_lpips, net):
    lp, ckpts = package_lpips
    ref = lp.LPIPS(net=net, version="0.1", verbose=False)  # linear layers from the package's weight files
    ours = load_lpips(net, trunk_weights=ckpts[net])
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 64, 64, generator=g)
    y = (x + 0.15 * torch.randn(3, 3, 64, 64, generator=g)).clamp(0, 1)
    with torch.no_grad():
        expected = ref(x, y, normalize=True).flatten()
        got = ours(x, y)
    assert expected.abs().min() > 1e-4  # a real distance, not a degenerate zero
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert torch.allclose(ours(x, x), torch.zeros(3), atol=1e-7)


def test_unavailable_says_why(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    ok, why = lpips_status("alex")
    assert not ok and "alexnet-owt-7be5be79.pth" in why and "trunk_weights" in why
    with pytest.raises(LPIPSUnavailable, match="does not exist"):
        load_lpips("alex", trunk_weights=tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(LPIPSUnavailable, match="do not fit"):
        load_lpips("alex", trunk_weights=bad)
    with pytest.raises(ValueError, match="'alex' or 'vgg'"):
        lpips_status("squeeze")
