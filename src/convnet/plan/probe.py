"""How fast a network trains here: a few timed steps on random images, before any data;
and how fast it answers (`pass_seconds_per_image`: forward passes without autograd).

The planner asks it for each image size it weighs, so that a plan's epochs and its time
estimate come from this machine, not from a table. Each measurement is also kept in the
cache (``probes/speeds.json``), keyed by the machine (processor, threads, torch), and the
fastest one seen is what the plan uses: the same command then plans the same on the same
machine, and a moment when something else shared the CPU does not shrink every later plan.
Delete that file to measure afresh.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from contextlib import suppress
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from convnet.atomic import write_json
from convnet.data.cache import cache_dir
from convnet.errors import DiskFull
from convnet.network import build
from convnet.network.folding import folded
from convnet.training import compiler_import
from convnet.training.speed import autocast, autocast_dtype, fused_options

if TYPE_CHECKING:
    from convnet.plan.planner import PassProbe, Probe

# one warm-up step, then two timed: on EfficientNet-Lite0 at 96-192 px (batch 8, bf16)
# the first step took 1.2-1.6x the others and the second was within 5% of the five after
# it, and under a short --time budget four probes of 2+3 steps took 4-5 s of 21
WARMUP, MIN_STEPS, MIN_SECONDS = 1, 2, 0.1
# a forward pass is timed at the run's batch (tens of photos: 70-140 ms at 96-160 px), so
# one pass after the warm-up does, unless it takes less than PASS_SECONDS
MIN_PASSES, PASS_SECONDS = 1, 0.05


@lru_cache(maxsize=64)  # a folder's plan weighs its size before decoding and again after
def seconds_per_image(arch: str, input_shape: tuple[int, int, int], classes: int,
                      batch_size: int, device: torch.device, precision: str = "auto") -> float:
    """Seconds one training step takes per image (forward, backward, AdamW): the faster of
    this measurement and the fastest stored for this machine and these arguments.

    Measured once per process for each set of arguments; torch's global random state is
    left as it was.
    """
    measured = _measure(arch, input_shape, classes, batch_size, device, precision)
    key = json.dumps([_machine(device), arch, list(input_shape), classes, batch_size,
                      precision])
    return _fastest(key, measured)


@lru_cache(maxsize=64)
def pass_seconds_per_image(arch: str, input_shape: tuple[int, int, int], classes: int,
                           batch_size: int, device: torch.device, precision: str) -> float:
    """Seconds one forward pass without autograd takes per image (eval mode, channels
    last, autocast as ``precision`` asks): what features computed once and the images
    scored as a run ends cost. Kept like `seconds_per_image`, the fastest seen.

    Why not a share of a training step: on a CPU with AVX-512 BF16, the features (bf16)
    and the scores the run keeps (fp32) cost 2.8 and 4.5-5.1 ms per image for
    EfficientNet-Lite0 at 160 px, where one share of the step probe put both at 3.7
    (bench/HISTORY.md, "The head alone's estimate")."""
    measured = _measure_passes(arch, input_shape, classes, batch_size, device, precision)
    key = json.dumps([_machine(device), "pass", arch, list(input_shape), classes,
                      batch_size, precision])
    return _fastest(key, measured)


def _measure_passes(arch: str, input_shape: tuple[int, int, int], classes: int,
                    batch_size: int, device: torch.device, precision: str) -> float:
    """Passes timed until `MIN_PASSES` and `PASS_SECONDS` both pass (`_per_call`)."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        # as the run's passes go: batch norms folded (`convnet.network.folding`)
        network = folded(build(arch, input_shape, classes).to(device).eval(),
                         torch.channels_last)
        x = _images(input_shape, batch_size, device)  # (B, C, H, W)
        with torch.inference_mode(), autocast(device, autocast_dtype(precision, device)):
            return _per_call(lambda: network(x), device, MIN_PASSES, PASS_SECONDS) / batch_size


def _measure(arch: str, input_shape: tuple[int, int, int], classes: int, batch_size: int,
             device: torch.device, precision: str) -> float:
    """Steps timed until ``MIN_STEPS`` and ``MIN_SECONDS`` both pass (`_per_call`)."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        network = build(arch, input_shape, classes).to(device)
        network = network.to(memory_format=torch.channels_last)
        optimizer = torch.optim.AdamW(network.parameters(), lr=1e-3, **fused_options(device))
        x = _images(input_shape, batch_size, device)  # (B, C, H, W)
        y = torch.randint(0, classes, (batch_size,), device=device)
        dtype = autocast_dtype(precision, device)

        def step() -> None:
            with autocast(device, dtype):
                loss = F.cross_entropy(network(x).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            compiler_import.step(optimizer)  # no compiler imported for a probe
        return _per_call(step, device, MIN_STEPS, MIN_SECONDS) / batch_size


def _images(input_shape: tuple[int, int, int], batch_size: int, device: torch.device
            ) -> torch.Tensor:
    """Random images (B, C, H, W), channels last, for ``input_shape`` (H, W, C)."""
    height, width, channels = input_shape
    x = torch.rand(batch_size, channels, height, width, device=device)  # (B, C, H, W)
    return x.to(memory_format=torch.channels_last)


def _per_call(call: Callable[[], object], device: torch.device, least: int,
              seconds: float) -> float:
    """Seconds one ``call`` takes: `WARMUP` calls untimed, then calls until ``least`` of
    them and ``seconds`` have both passed, their mean."""
    calls, started = 0, 0.0
    while calls < WARMUP + least or time.perf_counter() - started < seconds:
        if calls == WARMUP:
            _sync(device)
            started = time.perf_counter()
        call()
        calls += 1
    _sync(device)
    return (time.perf_counter() - started) / (calls - WARMUP)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _machine(device: torch.device) -> str:
    """What a speed depends on besides the arguments: the chip, the threads, torch."""
    chip = torch.cuda.get_device_name(device) if device.type == "cuda" else _processor()
    return f"{device.type}|{chip}|{torch.get_num_threads()} threads|torch {torch.__version__}"


def _processor() -> str:
    try:  # Linux names the model here; platform.processor() is often empty there
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _fastest(key: str, measured: float) -> float:
    """The faster of ``measured`` and the stored speed for ``key``, which it becomes."""
    path = cache_dir("probes") / "speeds.json"
    try:
        stored = json.loads(path.read_text())
        stored = stored if isinstance(stored, dict) else {}
    except (OSError, ValueError):  # none yet, or damaged: measure afresh
        stored = {}
    best = stored.get(key)
    if isinstance(best, (int, float)) and 0 < best <= measured:
        return float(best)
    stored[key] = measured
    with suppress(OSError, DiskFull):  # a read-only or full cache: plan from this one
        write_json(path, stored)
    return measured


def probe_on(device: torch.device, precision: str) -> Probe:
    """The probe for ``device``: `seconds_per_image` there."""
    def probe(arch: str, shape: tuple[int, int, int], classes: int, batch: int) -> float:
        return seconds_per_image(arch, shape, classes, batch, device, precision)
    return probe


def passes_on(device: torch.device, precision: str) -> PassProbe:
    """The forward-pass probe for ``device``: `pass_seconds_per_image`
    there, at ``precision`` or in fp32, at the batch a run's passes take
    (`convnet.allocator.images_per_pass`: per image, passes of 8 photos took 1.2-2.1x as
    long as those at 96-160 px in bf16 here, bench/HISTORY.md).

    One probe per side where the run's precision is fp32 anyway. Where it is lower, fp32
    is probed at the first side asked for each network, and other sides take the ratio
    found there: it held within 1.71-1.94 for Lite0 and Lite2 at 128-224 px here
    (`python -m bench speed folding`), and each fp32 probe costs 0.15-0.3 s of a plan
    that goes up the sides. The ratio is kept for the process, so the plan after decoding
    scales by the one the plan before it did: probed again at its own side, it moved the
    same plan's estimate by up to 2 s of 12 (bench/HISTORY.md, "The head alone's
    deadline")."""
    from convnet.allocator import images_per_pass

    run = precision if autocast_dtype(precision, device) is not None else "fp32"

    def timed(arch: str, shape: tuple[int, int, int], classes: int, at: str) -> float:
        batch = images_per_pass(shape[0] * shape[1], device)
        return pass_seconds_per_image(arch, shape, classes, batch, device, at)

    def passes(arch: str, shape: tuple[int, int, int], classes: int, fp32: bool) -> float:
        seen = timed(arch, shape, classes, run)
        if not fp32 or run == "fp32":
            return seen
        key = (arch, str(device), run)
        if key not in _RATIOS:
            _RATIOS[key] = timed(arch, shape, classes, "fp32") / seen
        return seen * _RATIOS[key]
    return passes


# per (network, device, precision): fp32 passes over the precision's, for the process
_RATIOS: dict[tuple[str, str, str], float] = {}
