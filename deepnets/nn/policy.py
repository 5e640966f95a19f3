"""Which arithmetic a network runs on a given device and dtype: the one place that decides
(issue 17).

A network computes either the reference path (:mod:`deepnets.nn.reference`: the paper's equations
in plain torch, ``fast=False``) or the fast path (:mod:`deepnets.nn.layers`' autograd functions and
:mod:`deepnets.nn.kernels`, ``fast=True``, the default). The fast path's device- and dtype-specific
tricks are each one field of :class:`ExecutionPolicy`, decided here from (device type, compute
dtype, fast) and nowhere else; every field changes how, never what, is computed (fast =
reference to float rounding: ``tests/deepnets/test_paths.py``).

``--precision auto`` is decided here too, once per run from the resolved device
(:func:`resolve_precision`): bf16 where the hardware runs bf16 matrix products faster than
fp32 ones, fp32 elsewhere (issue 18, part 1).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["COMPUTE_DTYPES", "ExecutionPolicy", "auto_precision", "cpu_bf16_hardware",
           "cuda_bf16_tensor_cores", "execution_policy", "policy_for", "resolve_precision"]

#: Arithmetic of a training step: the dtype its forward and backward passes compute in. W, R
#: and b stay float32 (the master copies) and take float32 updates in every case.
COMPUTE_DTYPES = {"fp32": None, "bf16": torch.bfloat16}

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


def cpu_bf16_hardware() -> dict[str, bool | None]:
    """What this CPU has for bf16 arithmetic: ``amx_tiles`` (AMX tile matrix units, where a bf16
    matmul runs several times the fp32 rate) and ``avx512_bf16`` (bf16 dot-product
    instructions only: measured on a Xeon without AMX, a 4096^3 bf16 matmul ran at ~165 GFLOP/s,
    half the fp32 rate of ~335). From torch's capability probes, which are private API of
    :mod:`torch.cpu`: None where this torch lacks a probe or it fails."""
    found: dict[str, bool | None] = {}
    for key, probe in (("amx_tiles", "_is_amx_tile_supported"),
                       ("avx512_bf16", "_is_avx512_bf16_supported")):
        try:
            found[key] = bool(getattr(torch.cpu, probe)())
        except Exception:  # noqa: BLE001 (private API, its failures undocumented: unknown)
            found[key] = None
    return found


def cuda_bf16_tensor_cores(device: str) -> bool:
    """Whether the CUDA device ``device`` has bf16 tensor cores (compute capability >= 8.0,
    Ampere and later; older devices only emulate bf16)."""
    try:
        return tuple(torch.cuda.get_device_capability(device)) >= (8, 0)
    except (AssertionError, RuntimeError, ValueError):  # no CUDA build, no such device
        return False


def auto_precision(device: str) -> str:
    """``--precision auto`` on the resolved device ``device`` (``cpu``, ``cuda``, ``cuda:1``):
    ``bf16`` on a CPU with AMX tiles or a CUDA device with bf16 tensor cores, ``fp32``
    elsewhere (an unknown probe counts as absent)."""
    if torch.device(device).type == "cuda":
        return "bf16" if cuda_bf16_tensor_cores(device) else "fp32"
    return "bf16" if cpu_bf16_hardware()["amx_tiles"] else "fp32"


def resolve_precision(precision: str, device: str) -> str:
    """The precision a run on the resolved ``device`` computes in: ``auto`` decided by
    :func:`auto_precision`, any other value as it is."""
    return auto_precision(device) if precision == "auto" else precision
