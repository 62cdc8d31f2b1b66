"""The GPU paths (issue 17): training with `--device cuda` in every mode the CPU tests cover
(fp32 and bf16 autocast, torch.compile, EMA, flip TTA, whitening, checkpoints and resume),
and scoring on the GPU equal to scoring on the CPU.

These run only where CUDA is available and skip elsewhere. ``CONVNET_TEST_DEVICE=cpu``
runs them on a CPU instead, to check the tests themselves; the GPU figures come only from a
GPU run.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import convnet
from conftest import TINY_ARCH, TINY_DATA
from convnet.cli import main
from convnet.runs import Run

DEVICE = os.environ.get("CONVNET_TEST_DEVICE") or ("cuda" if torch.cuda.is_available()
                                                   else None)
pytestmark = pytest.mark.skipif(DEVICE is None, reason="needs a CUDA GPU (or "
                                "CONVNET_TEST_DEVICE=cpu to check these tests on a CPU)")
CHILD = Path(__file__).parent / "make" / "resume_child.py"
# no augmentation, no dropout, fp32: the CPU and the GPU see the same numbers
EXACT = dict(data=TINY_DATA, arch=TINY_ARCH, epochs=2, batch_size=16, augment="none",
             precision="fp32", seed=1, ema=0.0, compile="off")


def _close(one: dict[str, torch.Tensor], two: dict[str, torch.Tensor], tolerance: float
           ) -> bool:
    return one.keys() == two.keys() and all(
        torch.allclose(one[name].float(), two[name].float(), atol=tolerance, rtol=tolerance)
        for name in one)


def test_a_tiny_fp32_run_on_the_device_ends_with_the_cpus_weights(tmp_path):
    on_cpu = convnet.train(out=tmp_path / "cpu", device="cpu", **EXACT).path
    on_device = convnet.train(out=tmp_path / "device", device=DEVICE, **EXACT).path
    assert convnet.load(on_device).record.config.device == DEVICE
    # cuDNN's kernels sum in another order than the CPU's: equal within float tolerance
    assert _close(load_file(on_cpu / "model.safetensors"),
                  load_file(on_device / "model.safetensors"), 1e-4)


def test_scoring_on_the_device_equals_scoring_on_the_cpu(tiny_run):
    run = convnet.load(tiny_run)
    split = convnet.datasets.load(TINY_DATA).test
    on_cpu = run.evaluate(split)
    on_device = Run(convnet.load(tiny_run).network.to(DEVICE), run.record).evaluate(split)
    assert on_device.accuracy == on_cpu.accuracy
    assert torch.equal(on_device.confusion.cpu(), on_cpu.confusion.cpu())


@pytest.mark.parametrize("flags", [
    ["--precision", "bf16"],
    ["--precision", "bf16", "--compile", "on"],
    ["--ema", "0.9", "--flip", "--tta", "flip"],
])
def test_the_cli_trains_evaluates_and_predicts_on_the_device(tmp_path, capsys, flags):
    out = tmp_path / "run"
    assert main(["train", "--data", TINY_DATA, "--arch", TINY_ARCH, "--epochs", "2",
                 "--device", DEVICE, "--no-report", "--out", str(out), *flags]) == 0
    record = convnet.load(out).record
    assert record.config.device == DEVICE and math.isfinite(record.metrics.test["loss"])
    assert main(["evaluate", str(out), "--json"]) == 0
    capsys.readouterr()
    convnet.datasets.export(convnet.datasets.load(TINY_DATA), tmp_path / "images",
                            split="test", limit=1)
    image = next((tmp_path / "images").rglob("*.png"))
    assert main(["predict", str(out), str(image), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out.splitlines()[0])
    assert abs(sum(answer["probabilities"].values()) - 1) < 1e-4


def test_the_whitened_recipe_trains_on_the_device(tmp_path):
    # the recipe's batch and learning rate are CIFAR's: scaled down for 200 images
    result = convnet.train(data="x-or-not-x:size=32,train=100,test=20", recipe="cifar-fast",
                           epochs=6, batch_size=32, lr=0.05, device=DEVICE,
                           out=tmp_path / "run")
    assert result.test.accuracy > 0.6
    assert convnet.load(result.path).record.spec.startswith("whiten")


def test_a_run_killed_on_the_device_resumes_to_the_uninterrupted_weights(tmp_path):
    config = dict(data="shapes:size=12,train=40,test=10", arch="conv6k3-bn-relu-maxpool2-"
                  "fc16-relu-fc", epochs=3, batch_size=16, ema=0.9, seed=5, threads=1,
                  checkpoint_every=1e-9, device=DEVICE)
    whole = convnet.train(out=tmp_path / "whole", **config).path
    out = tmp_path / "run"
    child = subprocess.run([sys.executable, str(CHILD), str(out), "step", "4",
                            json.dumps(config)], capture_output=True, text=True, timeout=300)
    assert child.returncode == -9, child.stderr[-2000:]
    convnet.train(resume=out)
    # the GPU's reductions need not be bitwise repeatable, unlike one CPU thread's
    assert _close(load_file(whole / "model.safetensors"), load_file(out / "model.safetensors"),
                  1e-4 if DEVICE == "cuda" else 0.0)
