"""Opaque torch custom ops (``torch.ops.rlkit.*``) that the compiled blurs use; registered on import.

Under ``compile=True`` inductor would otherwise fuse (and recompute per tap) a blur's producer, and lower
bilinear upsampling more slowly than ATen's kernel: ``materialize`` stores a tensor, ``upsample_bilinear``
runs ATen's kernel (with its backward), both without a graph break.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import FunctionCtx

__all__: list[str] = []


@torch.library.custom_op("rlkit::upsample_bilinear", mutates_args=())
def _upsample_op(y: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)


@_upsample_op.register_fake
def _(y: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return y.new_empty((*y.shape[:-2], h, w))


@torch.library.custom_op("rlkit::upsample_bilinear_backward", mutates_args=())
def _upsample_backward_op(grad: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.ops.aten.upsample_bilinear2d_backward(grad.contiguous(), list(grad.shape[-2:]), list(y.shape),
                                                        False)


@_upsample_backward_op.register_fake
def _(grad: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(y)


def _upsample_backward(ctx: FunctionCtx, grad: torch.Tensor) -> tuple:
    return torch.ops.rlkit.upsample_bilinear_backward(grad, ctx.saved_tensors[0]), None, None


def _upsample_setup(ctx: FunctionCtx, inputs: tuple, output: torch.Tensor) -> None:
    ctx.save_for_backward(inputs[0])


_upsample_op.register_autograd(_upsample_backward, setup_context=_upsample_setup)


@torch.library.custom_op("rlkit::materialize", mutates_args=())
def _materialize_op(y: torch.Tensor) -> torch.Tensor:
    """An opaque copy: makes inductor store ``y`` instead of fusing (and recomputing) its producer."""
    return y.clone()


@_materialize_op.register_fake
def _(y: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(y)


_materialize_op.register_autograd(lambda ctx, grad: grad)
