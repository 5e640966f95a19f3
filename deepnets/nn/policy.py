"""Which arithmetic a network runs on a given device and dtype: the one place that decides
(issue 17).

A network computes either the reference path (:mod:`deepnets.nn.reference`: the paper's equations
in plain torch, ``fast=False``) or the fast path (:mod:`deepnets.nn.layers`' autograd functions and
:mod:`deepnets.nn.kernels`, ``fast=True``, the default). The fast path's device- and dtype-specific
tricks are each one field of :class:`ExecutionPolicy`, decided here from (device type, compute
dtype, fast) and nowhere else; every field changes how, never what, is computed (fast =
reference to float rounding: ``tests/deepnets/test_paths.py``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["ExecutionPolicy", "execution_policy", "policy_for"]

#: dtypes for which oneDNN's CPU convolutions and torch's CPU max pool are fastest in
#: channels-last memory order
_ONEDNN_DTYPES = (torch.float32, torch.bfloat16)


@dataclass(frozen=True)
class ExecutionPolicy:
    """How a network's layers compute (see the module's docstring); all False on the reference
    path except ``keep_freed_memory``, which changes no number."""

    #: the reference path (:mod:`deepnets.nn.reference`) instead of the fast one
    reference: bool
    #: fold a power-of-two s of sigma into W and b (spatial layers: W is smaller than h)
    fold_scale: bool
    #: 4-d activations in channels-last order (oneDNN's convolutions, torch's max pool: 1.5-7x)
    channels_last: bool
    #: a conv layer's clip as the post-op of one oneDNN convolution
    fused_clip_conv: bool
    #: a spatial layer and the max pool after it as one function (pool on s h, clip after)
    fuse_pool: bool
    #: the zero-padded pool as torch's pool with implicit padding plus a fix of the border
    #: windows; that fix reads a value on the host, so off the CPU (where a step must not
    #: synchronise: CUDA graphs) the pool takes an explicitly padded copy instead
    implicit_pool_padding: bool
    #: dropout's mask drawn as 32 random bits per unit from the CPU generator
    #: (:func:`deepnets.nn.kernels.dropout_noise`); off the CPU torch's own dropout
    cpu_dropout_noise: bool
    #: a bf16 conv weight gradient on one thread (oneDNN's stalls ~4 s with 2 threads)
    one_thread_bf16_weight_grad: bool
    #: glibc keeps freed memory, so a step reuses the pages of the last
    #: (:mod:`deepnets.training.cpu`)
    keep_freed_memory: bool


@functools.cache
def execution_policy(device: str, dtype: torch.dtype = torch.float32, fast: bool = True
                     ) -> ExecutionPolicy:
    """The policy for computing in ``dtype`` on a device of type ``device`` ("cpu", "cuda",
    "meta", ...); ``fast=False``: the reference path. Decided once per combination."""
    cpu = device == "cpu"
    onednn = cpu and dtype in _ONEDNN_DTYPES
    return ExecutionPolicy(
        reference=not fast,
        fold_scale=fast,
        channels_last=fast and onednn,
        fused_clip_conv=fast and onednn and _HAS_CONV_POINTWISE,
        fuse_pool=fast,
        implicit_pool_padding=fast and cpu,
        cpu_dropout_noise=fast and cpu,
        one_thread_bf16_weight_grad=fast and cpu and dtype == torch.bfloat16,
        keep_freed_memory=cpu,
    )


def policy_for(x: Tensor, fast: bool = True) -> ExecutionPolicy:
    """The policy for the tensor ``x`` a layer computes on (its device and dtype)."""
    return execution_policy(x.device.type, x.dtype, fast)


_HAS_CONV_POINTWISE = torch.backends.mkldnn.is_available() and hasattr(
    torch.ops.mkldnn, "_convolution_pointwise")
