"""Planted copies and moved labels: what `convnet check-data` finds in a real dataset.

    python bench/near_duplicates.py digits     # the shared 8,000 + 2,000 digits as PNGs
    python bench/near_duplicates.py cifar      # the shared CIFAR-10 JPEGs (50,000 + 10,000)

The folder is built once under --root, from a seed: 3% of the training images moved to a
wrong class folder, and 40 copies of training images planted in test/ under their class:
20 exact (the same bytes) and 20 near (resized ×0.5–1.5, shifted 1–2 px, saved as JPEG
of quality 60–90). `convnet check-data DIR --json` then runs in a fresh process with an
empty cache, and the script counts the planted pairs found (both in one group) and every
other pair that is reported (pairs inside groups, the planted ones left out).

Also printed: the time of the near-duplicate search alone (decoding excluded), from the
decoded cache, for the whole folder and for its first 10,000 images. Results are appended
to --results as JSON lines.
"""

from __future__ import annotations

import argparse
import io
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

from PIL import Image

from benchdata import append_row, cifar_folder
from zoo_data import Entry, _build_mnist

MOVED_SHARE = 0.03
PLANTED = 20  # of each kind


def build(kind: str, root: Path) -> Path:
    """The dataset folder with its plants, and plan.json saying what was planted."""
    target = root / kind
    if (target / "plan.json").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    (_digits if kind == "digits" else _cifar)(target)
    rng = random.Random(kind)
    train = sorted((target / "train").glob("*/*"))
    classes = sorted(p.name for p in (target / "train").iterdir())
    moved = []
    for path in rng.sample(train, round(MOVED_SHARE * len(train))):
        wrong = rng.choice([c for c in classes if c != path.parent.name])
        new = target / "train" / wrong / f"moved-{path.name}"
        path.rename(new)
        moved.append({"path": str(new), "true": path.parent.name})
    moved_paths = {m["path"] for m in moved}
    originals = rng.sample([p for p in train if p.exists() and str(p) not in moved_paths],
                           2 * PLANTED)
    planted = []
    for number, original in enumerate(originals):
        folder = target / "test" / original.parent.name
        if number < PLANTED:
            copy = folder / f"plant-exact-{number}{original.suffix}"
            shutil.copyfile(original, copy)
        else:
            copy = folder / f"plant-near-{number}.jpg"
            _near_copy(original, copy, rng)
        planted.append([str(original), str(copy)])
    (target / "plan.json").write_text(json.dumps({"moved": moved, "planted": planted}))
    return target


def _near_copy(original: Path, copy: Path, rng: random.Random) -> None:
    image = Image.open(original)
    image.load()
    dx, dy = (rng.choice([-2, -1, 1, 2]) for _ in range(2))  # pixels of the original
    image = image.transform(image.size, Image.Transform.AFFINE, (1, 0, dx, 0, 1, dy),
                            resample=Image.Resampling.NEAREST)
    scale = rng.uniform(0.5, 1.5)
    size = (max(4, round(image.width * scale)), max(4, round(image.height * scale)))
    image = image.resize(size, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=rng.randint(60, 90))
    copy.write_bytes(buffer.getvalue())


def _digits(target: Path) -> None:
    """Every shared digit as a 28 px PNG, as the zoo writes its digit folders."""
    _build_mnist(Entry("digits", "mnist", side=28), target, random.Random(0))


def _cifar(target: Path) -> None:
    shutil.copytree(cifar_folder(), target)


def check(target: Path) -> tuple[dict, float]:
    """`convnet check-data --json` in a fresh process and cache: (report, seconds)."""
    cache = Path(tempfile.mkdtemp(prefix="convnet-dedupe-cache-"))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "convnet", "check-data", str(target),
                           "--json"], capture_output=True, text=True, timeout=3600,
                          env={**os.environ, "CONVNET_CACHE": str(cache)})
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(done.stderr[-2000:])
    search = _search_seconds(target, cache)
    shutil.rmtree(cache, ignore_errors=True)
    return {**json.loads(done.stdout), "search": search}, seconds


def _search_seconds(target: Path, cache: Path) -> dict:
    """The near-duplicate search alone on the decoded images: the first 10,000, the first
    50,000 and all of them."""
    os.environ["CONVNET_CACHE"] = str(cache)
    import numpy as np
    import torch

    from convnet.data.similar import near_pairs

    (folder,) = [p for p in (cache / "decoded").iterdir() if p.is_dir()]
    pixels = np.load(folder / "images.npy", mmap_mode="r")
    times = {}
    for count in sorted({min(size, len(pixels)) for size in (10_000, 50_000, len(pixels))}):
        def fetch(rows):
            return torch.from_numpy(np.ascontiguousarray(pixels[list(rows)]))
        started = time.perf_counter()
        found = near_pairs(fetch, count)
        times[str(count)] = {"seconds": round(time.perf_counter() - started, 2),
                             "pairs": len(found)}
    return times


def score(target: Path, report: dict) -> dict:
    plan = json.loads((target / "plan.json").read_text())
    planted = {frozenset(pair) for pair in plan["planted"]}
    found, other, kinds = set(), [], {}
    for group in report["duplicates"]:
        for a, b in itertools.combinations(group["paths"], 2):
            pair = frozenset((a, b))
            if pair in planted:
                found.add(pair)
                kinds[pair] = group["similarity"]
            else:
                other.append([a, b, group["similarity"]])
    near = {frozenset(p) for p in plan["planted"] if "plant-near" in p[1]}
    return {"planted": len(planted), "found": len(found),
            "found_exact": len(found - near), "found_near": len(found & near),
            "missed": sorted(str(sorted(p)) for p in planted - found),
            "other_pairs": len(other), "other_examples": other[:10]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("digits", "cifar"))
    parser.add_argument("--root", type=Path,
                        default=Path(tempfile.gettempdir()) / "convnet-dedupe-bench")
    parser.add_argument("--results", type=Path,
                        default=Path(__file__).with_name("near_duplicates.jsonl"))
    args = parser.parse_args()
    target = build(args.kind, args.root)
    report, seconds = check(target)
    row = {"data": args.kind, "check_data_seconds": round(seconds, 1),
           "search": report["search"], **score(target, report)}
    print(json.dumps(row, indent=1))
    append_row(args.results, row)


if __name__ == "__main__":
    main()
