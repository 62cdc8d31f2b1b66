"""Shared by the resume tests: run the stopping child, and compare two runs' files."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

CHILD = Path(__file__).parent / "make" / "resume_child.py"
TIMES = {"seconds", "images_per_s", "data_seconds"}
# model.json keys that differ between any two runs: when and how fast, not what
RECORD_TIMES = {"created", "seconds", "data_seconds",
                "images_per_s", "threads_used", "estimate_seconds"}


def run_child(out: Path, point: str, count: int, config: dict, timeout: float = 300
              ) -> subprocess.CompletedProcess:
    """The resume child, stopped at ``point``; its return code is the test's to check."""
    return subprocess.run([sys.executable, str(CHILD), str(out), point, str(count),
                           json.dumps(config)], capture_output=True, text=True,
                          timeout=timeout)


def same_weights(first: Path, second: Path) -> bool:
    expected, found = load_file(first / "model.safetensors"), load_file(second /
                                                                        "model.safetensors")
    return expected.keys() == found.keys() and \
        all(torch.equal(expected[name], found[name]) for name in expected)


def metrics(folder: Path) -> list[dict[str, str]]:
    with (folder / "metrics.csv").open() as file:
        return [{k: v for k, v in row.items() if k not in TIMES} for row in csv.DictReader(file)]


def record(folder: Path) -> dict:
    """model.json with the times, dates and thread counts taken out (at any depth)."""
    def strip(tree):
        if isinstance(tree, dict):
            return {key: strip(value) for key, value in tree.items()
                    if key not in RECORD_TIMES}
        if isinstance(tree, list):
            return [strip(value) for value in tree]
        return tree
    return strip(json.loads((folder / "model.json").read_text()))


def rgb_folder(root: Path, classes: int = 3, train: int = 20, test: int = 4,
               sizes: tuple[int, int] = (32, 32), seed: int = 0) -> Path:
    """A train/test folder of RGB PNGs whose classes differ in colour and texture; image
    sides are drawn from ``sizes`` (inclusive), so a range makes mixed sizes."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("test", test)):
        for label in range(classes):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True)
            for index in range(count):
                height, width = rng.integers(sizes[0], sizes[1] + 1, 2)
                pixels = rng.integers(0, 90, (height, width, 3))
                pixels[..., label % 3] += 100 + 20 * (label // 3)
                pixels[::label + 2] //= 2  # stripes, a texture per class
                Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{index}.png")
    return root
