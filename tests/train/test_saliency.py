"""The saliency trainer: ground-truth maps from the records' disks, loss components in the logs, resuming
from a checkpoint replays the same run, the recipe end to end, and rows that do not fit are named."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoModel

from rlkit.data import BlemishRecord, EditFHFRecord, FlawRegion, Region, saliency_from_regions
from rlkit.policies import load_saliency_net
from rlkit.testing import one_torch_thread, tiny_model_path
from rlkit.train.saliency import SaliencyCollator, SaliencyConfig, train_saliency

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():  # tiny models: no thread contention on a loaded machine
        yield


def _blemish_rows(n: int, size: int = 64) -> list[BlemishRecord]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        img = Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
        regs = [Region((float(rng.integers(8, size - 8)), float(rng.integers(8, size - 8))), "color_inconsistency")]
        out.append(BlemishRecord(img, f"photo {i}", regs, f"r{i}"))
    return out


def _args(tmp_path, **kw) -> SaliencyConfig:
    base = dict(output_dir=str(tmp_path / "out"), max_steps=4, per_device_train_batch_size=4, learning_rate=1e-3,
                logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, seed=0, disable_tqdm=True,
                crop_scale=[0.75, 1.0])
    base.update(kw)
    return SaliencyConfig(**base)


def test_labels_are_the_regions_gaussian_maps_cropped_and_flipped_like_the_image():
    net = load_saliency_net(tiny_model_path("saliency_text"))
    rec = _blemish_rows(1, size=64)[0]
    batch = SaliencyCollator(net, train=False)([rec.to_example()])
    want = saliency_from_regions(rec.regions, 64, 64)  # sigma = disk radius H/20, peak 1
    np.testing.assert_allclose(batch["labels"][0, 0].numpy(), want, atol=1e-6)
    np.testing.assert_allclose(batch["pixel_values"][0].permute(1, 2, 0).numpy(), np.asarray(rec.image) / 255,
                               atol=1e-6)
    # a training crop: the same window and flip for image and map. The image's red/green channels encode
    # the pixel's column/row, so each crop says where it came from
    yy, xx = np.mgrid[0:128, 0:128]
    coded = Image.fromarray(np.stack([xx * 2, yy * 2, np.zeros_like(xx)], -1).astype(np.uint8))
    big = BlemishRecord(coded, "p", [Region((70.0, 50.0), "x"), Region((20.0, 100.0), "x")])
    col = SaliencyCollator(net, train=True, crop_scale=(0.5, 0.5), hflip=True)
    torch.manual_seed(1)
    b = col([big] * 8)
    full_map = torch.from_numpy(big.saliency())
    flips = set()
    for i in range(8):
        px = (b["pixel_values"][i] * 255).round().long()
        cols, rows = px[0] // 2, px[1] // 2
        flip = bool(cols[0, 0] > cols[0, -1])
        flips.add(flip)
        top, left = int(rows[0, 0]), int(cols[0].min())
        want = full_map[top:top + 64, left:left + 64]
        torch.testing.assert_close(b["labels"][i, 0], want.flip(-1) if flip else want, atol=1e-6, rtol=0)
    assert flips == {False, True}


def test_editfhf_rows_give_two_maps_for_the_vlm():
    net = load_saliency_net(tiny_model_path("saliency_vlm"))
    img = Image.new("RGB", (128, 128), (90, 120, 150))
    rec = EditFHFRecord(img, img, "Warm it up.",
                        [FlawRegion((10, 10, 40, 40), [(25, 25)], "blotch", "color_inconsistency", "artifact")],
                        [FlawRegion((60, 60, 120, 120), [(90, 90)], "missing", "missing_edit", "editing_failure")])
    b = SaliencyCollator(net, train=False)([rec.to_example()])
    assert b["labels"].shape == (1, 2, 128, 128)
    a, f = rec.saliency_maps()
    np.testing.assert_allclose(b["labels"][0, 0].numpy(), a, atol=1e-6)
    np.testing.assert_allclose(b["labels"][0, 1].numpy(), f, atol=1e-6)
    out = net(**b)
    assert out.loss is not None and {"l1/artifact", "kld/failure", "bce"} <= set(out.components)


def test_components_logged_and_folder_loads(tmp_path):
    net = load_saliency_net(tiny_model_path("saliency_text")).train()
    res = train_saliency(net, _blemish_rows(8), _args(tmp_path), eval_dataset=_blemish_rows(4))
    logs = [h for h in res.history if "loss" in h]
    assert len(logs) == 4 and all({"loss/mse", "loss/kld"} <= set(h) for h in logs)
    for h in logs:  # the loss is Eq. 2 of its components (one batch per log)
        assert h["loss"] == pytest.approx(0.5 * h["loss/mse"] + 0.5 * h["loss/kld"], rel=1e-3)
    back = AutoModel.from_pretrained(res.output_dir)
    assert (Path(res.output_dir) / "tokenizer.json").is_file() and type(back).__name__ == "TextSaliencyNet"
    ev = res.trainer.evaluate()
    assert {"eval_loss", "eval_loss/mse", "eval_loss/kld"} <= set(ev)


def test_resume_replays_the_uninterrupted_run(tmp_path):
    """Weights, optimizer, scheduler and data order come back exactly (whole images: crops are drawn afresh
    after a resume, see SaliencyCollator); the ViT's legacy checkpoint key names are mapped on the way in."""
    rows = _blemish_rows(12)
    kw = {"crop_scale": [1.0, 1.0], "hflip": False}
    full = load_saliency_net(tiny_model_path("saliency_text")).train()
    train_saliency(full, rows, _args(tmp_path / "a", max_steps=4, **kw))
    part = load_saliency_net(tiny_model_path("saliency_text")).train()
    args = _args(tmp_path / "b", max_steps=4, save_strategy="steps", save_steps=2, **kw)
    train_saliency(part, rows, args)
    ckpt = Path(args.output_dir) / "checkpoint-2"
    assert ckpt.is_dir()
    resumed = load_saliency_net(tiny_model_path("saliency_text")).train()
    res = train_saliency(resumed, rows, args, resume_from_checkpoint=str(ckpt))
    assert res.trainer.state.global_step == 4
    for (n, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=n)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train_saliency(resumed, rows, _args(tmp_path / "c"), resume_from_checkpoint=True)


def test_rows_that_do_not_fit_are_named(tmp_path):
    net = load_saliency_net(tiny_model_path("saliency_text"))
    col = SaliencyCollator(net)
    with pytest.raises(ValueError, match=r"BlemishRecord columns.*lacks \['image', 'regions'\]"):
        col([{"id": "x", "source": None, "edited": None}])
    with pytest.raises(TypeError, match=r"rows \(dicts\) or records, got str"):
        col(["a string"])
    with pytest.raises(ValueError, match="crop_scale"):
        _args(tmp_path, crop_scale=[0.0, 1.0])
    with pytest.raises(ValueError, match="empty"):
        train_saliency(net, [], _args(tmp_path))


def test_recipe_tiny_config_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sys.path.insert(0, str(ROOT / "recipes"))
    try:
        import train_saliency as recipe
    finally:
        sys.path.remove(str(ROOT / "recipes"))
    code = recipe.main(["--config", str(ROOT / "recipes/saliency/config_tiny.yaml"), "--max_steps", "2",
                        "--synthetic_size", "4", "--synthetic_test_size", "2", "--save_steps", "1",
                        "--per_device_train_batch_size", "2", "--output_dir", str(tmp_path / "o"),
                        "--disable_tqdm", "true"])
    assert code == 0 and (tmp_path / "o" / "checkpoint-2").is_dir() and (tmp_path / "o" / "config.json").is_file()
    assert math.isfinite(float(load_saliency_net(tmp_path / "o").config.loss_alpha))
