"""The C allocator's treatment of freed memory: kept for reuse, not handed back at once.

Why: a forward pass over a batch of photos allocates tensors of tens to hundreds of MB and
frees them a moment later. glibc's malloc maps each such block fresh from the kernel and
unmaps it when freed, so every layer of every batch pays a page fault per 4 KB touched:
`convnet predict imagenet` on 120 photos spent 8 s of its 13 s in the kernel on the
machine measured (bench/RESULTS.md, "Inference speed"). With the thresholds raised, freed
blocks stay in the process and the next batch reuses them: 5 s, 1 s of it in the kernel.
The price is that the process keeps its peak memory until it exits, as PyTorch's CUDA
caching allocator does on a GPU; ``CONVNET_MALLOC=system`` leaves the allocator as it is.
The CLI sets it, and so do the library's entry points (`convnet.train`, `convnet.fit`,
`convnet.load`): from Python without it, the head alone on 1,000 photos at 160 px spent
9.4 s in its features and 9.6 s scoring after them, against 6.6 s and 5.5 s
(bench/HISTORY.md, "The head alone's estimate").

Also here: how many images one forward pass takes (`pass_size`), so that its layers stay
small enough to be reused, and on a CPU to stay in the processor's caches.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# mallopt's parameters (glibc's malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
KEPT_BYTES = 1 << 30  # freed blocks up to this size stay in the heap for reuse
PAD_BYTES = 256 << 20  # the heap grows by at least this much at a time
_done = False
# input pixels per forward pass, at most (`pass_size`): on a CPU, passes of 16 photos
# at 224 px were 1.1-1.4x faster than of 64 (their layers stay in the caches; 2.4x without
# `keep_freed_memory`); a GPU takes larger ones
PIXELS_PER_PASS = {"cpu": 16 * 224 * 224, "cuda": 64 * 224 * 224}


def keep_freed_memory() -> bool:
    """Raise glibc malloc's thresholds (once per process); False where the platform has no
    glibc, or ``CONVNET_MALLOC=system`` asks to leave it alone."""
    global _done
    if _done:
        return True
    if os.environ.get("CONVNET_MALLOC", "").lower() == "system" or \
            not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    _done = all(mallopt(parameter, value) == 1 for parameter, value in (
        (M_MMAP_THRESHOLD, KEPT_BYTES), (M_TRIM_THRESHOLD, KEPT_BYTES), (M_TOP_PAD, PAD_BYTES)))
    return _done


def pass_size(images: torch.Tensor, device: torch.device) -> int:
    """Images (N, C, H, W) per forward pass on ``device``, at most `PIXELS_PER_PASS`
    pixels: a batch of 1,024 photos at 224 px has layers of about 5 GB, each mapped fresh
    from the kernel, page by page, and freed again, where a pass of a few photos stays in
    the processor's caches."""
    pixels = images.shape[-2] * images.shape[-1] if images.dim() == 4 else 1
    return images_per_pass(pixels, device)


def images_per_pass(pixels: int, device: torch.device) -> int:
    """Images of ``pixels`` (H·W) each per forward pass on ``device`` (`pass_size`)."""
    most = PIXELS_PER_PASS.get(device.type, PIXELS_PER_PASS["cuda"])
    return max(1, most // max(pixels, 1))
