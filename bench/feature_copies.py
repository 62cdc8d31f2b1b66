"""Copies of photos that the pixels hide and ImageNet features reveal: what
`convnet check-data` finds with the ImageNet-feature search on and off.

    python bench/feature_copies.py            # 2,000 + 400 CIFAR-10 photos at 128 px

The folder is built once under --root, from a seed: CIFAR-10 JPEGs enlarged to 128 px
(bicubic; the shared data has no larger photos), with 40 copies of training images planted
in test/, 8 of each kind: resized ×0.5–1.5 and JPEG 60–90; cropped 6–10% off the sides;
brightened ×1.2–1.4; turned grayscale; mirrored left-right. `convnet check-data DIR --json`
runs in a fresh process and cache, once with `--no-features` and once with the features,
and the script counts the planted pairs found and the other pairs reported.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

from benchdata import append_row, cifar_folder

SIDE, TRAIN, TEST, PER_KIND = 128, 2000, 400, 8
KINDS = ("jpeg", "crop", "bright", "gray", "mirror")


def build(root: Path) -> Path:
    target = root / "photos"
    if (target / "plan.json").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    rng = random.Random(0)
    source = cifar_folder()
    copied = {}
    for split, count in (("train", TRAIN), ("test", TEST)):
        files = sorted((source / split).glob("*/*"))
        for path in rng.sample(files, count):
            out = target / split / path.parent.name / f"{path.stem}.jpg"
            out.parent.mkdir(parents=True, exist_ok=True)
            Image.open(path).convert("RGB").resize((SIDE, SIDE), Image.Resampling.BICUBIC) \
                .save(out, quality=92)
            copied.setdefault(split, []).append(out)
    planted = []
    originals = rng.sample(copied["train"], PER_KIND * len(KINDS))
    for number, original in enumerate(originals):
        kind = KINDS[number // PER_KIND]
        copy = target / "test" / original.parent.name / f"plant-{kind}-{number}.jpg"
        _copy(Image.open(original).convert("RGB"), kind, rng).save(
            copy, quality=rng.randint(60, 90))
        planted.append([str(original), str(copy), kind])
    (target / "plan.json").write_text(json.dumps({"planted": planted}))
    return target


def _copy(image: Image.Image, kind: str, rng: random.Random) -> Image.Image:
    if kind == "jpeg":
        side = round(SIDE * rng.uniform(0.5, 1.5))
        return image.resize((side, side), Image.Resampling.BILINEAR)
    if kind == "crop":
        cut = round(SIDE * rng.uniform(0.06, 0.10))
        return image.crop((cut, cut, SIDE - cut, SIDE - cut))
    if kind == "bright":
        return ImageEnhance.Brightness(image).enhance(rng.uniform(1.2, 1.4))
    if kind == "gray":
        return ImageOps.grayscale(image).convert("RGB")
    return ImageOps.mirror(image)


def check(target: Path, features: bool) -> tuple[dict, float]:
    cache = Path(tempfile.mkdtemp(prefix="convnet-feature-cache-"))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "convnet", "check-data", str(target),
                           "--json", *([] if features else ["--no-features"])],
                          capture_output=True, text=True, timeout=3600,
                          env={**os.environ, "CONVNET_CACHE": str(cache)})
    seconds = time.perf_counter() - started
    shutil.rmtree(cache, ignore_errors=True)
    if done.returncode not in (0, 1):
        raise SystemExit(done.stderr[-2000:])
    return json.loads(done.stdout), seconds


def score(target: Path, report: dict) -> dict:
    plan = json.loads((target / "plan.json").read_text())
    kind_of = {frozenset(pair[:2]): pair[2] for pair in plan["planted"]}
    found: dict[str, int] = {kind: 0 for kind in KINDS}
    other = []
    for group in report["duplicates"]:
        for a, b in itertools.combinations(group["paths"], 2):
            kind = kind_of.get(frozenset((a, b)))
            if kind:
                found[kind] += 1
            else:
                other.append([a, b, group["similarity"]])
    return {"planted": len(kind_of), "found": sum(found.values()), "by_kind": found,
            "other_pairs": len(other), "other_examples": other[:6]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path,
                        default=Path(tempfile.gettempdir()) / "convnet-feature-bench")
    parser.add_argument("--results", type=Path,
                        default=Path(__file__).with_name("feature_copies.jsonl"))
    args = parser.parse_args()
    target = build(args.root)
    for features in (False, True):
        report, seconds = check(target, features)
        row = {"features": features, "check_data_seconds": round(seconds, 1),
               **score(target, report)}
        print(json.dumps(row, indent=1))
        append_row(args.results, row)


if __name__ == "__main__":
    main()
