"""Images given to rewards: NaN or inf anywhere is refused with the image named, never scored."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlkit.rewards.images import as_tensor, as_tensors


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_tensor_is_refused_with_its_name(bad):
    t = torch.rand(3, 8, 8)
    t[1, 4, 4] = bad
    with pytest.raises(ValueError, match=r"target image: .*finite"):
        as_tensor(t, where="target image")


@pytest.mark.parametrize("bad", [np.nan, -np.inf])
def test_non_finite_float_array_is_refused_with_its_name(bad):
    a = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32)
    a[2, 3, 0] = bad
    with pytest.raises(ValueError, match=r"edited image: .*finite"):
        as_tensor(a, where="edited image")


def test_finite_images_in_range_pass_unchanged():
    t = torch.rand(3, 8, 8)
    assert torch.equal(as_tensor(t), t)
    u8 = np.full((4, 4, 3), 255, dtype=np.uint8)
    assert torch.equal(as_tensor(u8), torch.ones(3, 4, 4))


@pytest.mark.parametrize(("bad", "match"), [(float("nan"), "finite"), (1.5, r"\[0, 1\]"), (-0.2, r"\[0, 1\]")])
def test_a_batch_of_tensors_names_the_sample_that_is_bad(bad, match):
    # tensors are checked together (one pass per size); the error still names the sample, not the batch
    images = [torch.rand(3, 8, 8) for _ in range(4)] + [torch.rand(3, 6, 6)]
    images[2][0, 1, 1] = bad
    with pytest.raises(ValueError, match=rf"target image of sample 2: .*{match}"):
        as_tensors(images, what="target image")
    images[2][0, 1, 1] = 0.5
    assert all(torch.equal(a, b) for a, b in zip(as_tensors(images), images))
