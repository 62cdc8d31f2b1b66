"""How a training step runs fast on the device at hand: precision, compilation, optimizers.

Each `auto` choice below was picked by measurement (bench/RESULTS.md, the `step_choices.py` table):

- bfloat16 autocast only where the hardware computes in bf16 natively (CUDA GPUs with bf16,
  CPUs with AVX-512 BF16 or AMX). On an AVX-512 CPU without them oneDNN emulates bf16 and a
  step of the Keras example net ran 30-45% slower than fp32.
- `torch.compile` off: no gain on the 2-core CPU after warm-up, and about 40 s of
  compilation before the first step.
- Fused optimizers (one kernel for every parameter) wherever torch has them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from convnet.errors import ConvnetError
from convnet.training import compiler_import


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 in hardware, so autocast to it pays."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(cpu, name, lambda: False)() for name in checks)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The dtype to autocast the forward pass to, or None for plain fp32."""
    if precision == "fp32" or precision == "auto" and not native_bf16(device):
        return None
    return torch.bfloat16


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    if dtype is None:
        yield
        return
    with torch.autocast(device.type, dtype=dtype):
        yield


def fused_options(device: torch.device) -> dict[str, bool]:
    """``fused=True`` where this torch has fused Adam/AdamW/SGD for the device."""
    major, minor = (int(part) for part in torch.__version__.split(".")[:2])
    if device.type == "cuda" or (major, minor) >= (2, 4):  # CPU kernels arrived in 2.4
        return {"fused": True}
    return {}


def maybe_compile(network: nn.Module, mode: str, device: torch.device) -> nn.Module:
    """The module the training step calls: the network itself, or its compiled version.

    The compiled module shares the network's parameters, so the optimizer, the saved
    weights and evaluation (which runs the network uncompiled) see the same tensors.
    """
    if mode != "on":
        return network
    compiler_import.restore()  # the optimizer's methods marked by the compiler itself
    try:
        return torch.compile(network)
    except RuntimeError as error:  # e.g. no C++ compiler, or an unsupported Python
        raise ConvnetError(f"compile='on': torch.compile is not available here ({error}). "
                           "Use compile='off', or install a C++ compiler.") from None
