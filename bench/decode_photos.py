"""Decoding phone-sized JPEGs: the decoder's reduced scale (`convnet.data.preprocess.
_draft`: 1/2, 1/4 or 1/8 of the photo, in the DCT) against every pixel decoded, then
resized, on the same files, interleaved.

    python bench/decode_photos.py                  # 60 photos of 4000×3000 px, to 224 px
    python bench/decode_photos.py --count 40 --side 128

The photos are CIFAR-10 training JPEGs (the shared folder) upscaled to ``--size`` and saved
as JPEG quality 90, as a phone saves them. Each round decodes every file in one process
both ways (the order alternating); the table gives the median over ``--rounds`` and the
mean and largest difference between the two ways' pixels (0-255).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchdata import append_row, cifar_folder, cpu_flags, machine

HERE = Path(__file__).resolve().parent


def _photos(root: Path, count: int, size: tuple[int, int]) -> list[Path]:
    sources = sorted((cifar_folder() / "train" / "cat").iterdir())[:count]
    paths = []
    for index, source in enumerate(sources):
        with Image.open(source) as image:
            photo = image.convert("RGB").resize(size, Image.Resampling.BICUBIC)
        paths.append(root / f"{index:03d}.jpg")
        photo.save(paths[-1], quality=90)
    return paths


def _decode(paths: list[Path], side: int, reduced: bool) -> tuple[float, list[np.ndarray]]:
    from convnet.data import preprocess

    real = preprocess._draft
    preprocess._draft = real if reduced else (lambda image, prep: None)
    try:
        prep = preprocess.Preprocess(side, side, 3)
        began = time.perf_counter()
        pixels = [preprocess.decode(path, prep) for path in paths]
        return time.perf_counter() - began, pixels
    finally:
        preprocess._draft = real


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument("--size", type=int, nargs=2, default=[4000, 3000])
    parser.add_argument("--side", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--results", type=Path, default=HERE / "decode_photos.jsonl")
    args = parser.parse_args()
    print(f"machine: {machine()}; cpu flags: {cpu_flags()}", flush=True)
    paths = _photos(Path(tempfile.mkdtemp(prefix="convnet-decode-")), args.count,
                    tuple(args.size))
    seconds: dict[bool, list[float]] = {True: [], False: []}
    pixels: dict[bool, list[np.ndarray]] = {}
    for round_ in range(args.rounds):
        for reduced in ((True, False) if round_ % 2 else (False, True)):
            taken, pixels[reduced] = _decode(paths, args.side, reduced)
            seconds[reduced].append(taken)
    gaps = np.stack([np.abs(a.astype(float) - b) for a, b in zip(pixels[True],
                                                                 pixels[False], strict=True)])
    row = {"photos": len(paths), "size": args.size, "side": args.side,
           "reduced_s": statistics.median(seconds[True]),
           "full_s": statistics.median(seconds[False]),
           "mean_gap": float(gaps.mean()), "largest_gap": float(gaps.max())}
    append_row(args.results, row)
    print(f"| way | seconds for {len(paths)} photos of {args.size[0]}×{args.size[1]} px "
          f"to {args.side} px | ms per photo |\n|---|---|---|", flush=True)
    for name, key in (("every pixel, then resized", "full_s"),
                      ("reduced scale (convnet)", "reduced_s")):
        print(f"| {name} | {row[key]:.2f} | {row[key] / len(paths) * 1000:.1f} |")
    print(f"pixels: mean difference {row['mean_gap']:.2f}, largest {row['largest_gap']:.0f} "
          "(of 255)")


if __name__ == "__main__":
    main()
