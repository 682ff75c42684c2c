"""Shared settings for the tiny-model tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # Tiny models gain nothing from intra-op threads, and on a shared 2-core machine OpenMP threads
    # spinning against other processes made a 0.1 s inpainting call take 5-20 s. Restored afterwards.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
