"""A dataset's fingerprint: the few facts a training plan is derived from.

For a folder it is read from file headers and the file list, before anything is decoded (the
plan picks the size to decode at); for a loaded dataset, from its tensors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import median
from typing import Any

import torch
import torch.nn.functional as F

from convnet.data.dataset import Dataset
from convnet.data.layout import Entry, Layout
from convnet.data.preprocess import ImageError, Preprocess, decode, peek
from convnet.data.scan import GRAY_MODES

HEADER_SAMPLE = 200  # file headers read to learn the image sizes of a folder
DETAIL_SAMPLE, DETAIL_SIDE = 32, 128  # images decoded to measure detail, and at what side
DETAIL_SIDES = (16, 24, 32, 48, 64, 96)  # sides weighed, smallest first
# Images of one size up to this side are trained at their own size on every device (the
# planner's size caps are all at least this), so their detail is not measured.
KEPT_SIDE = 64
DETAIL_LOSS = 0.03  # a side keeps the detail when shrinking to it loses less than this
FLAT_SAMPLE, FLAT_SIDE = 16, 64  # images decoded (grayscale) to measure the flat background
FLAT_TONE = 8  # grey levels from an image's commonest tone that count as its background


@dataclass(frozen=True)
class Fingerprint:
    """What a plan needs to know of the data."""

    classes: int
    train_images: int  # training images in all (validation not yet held out)
    smallest_class: int  # training images of the rarest class
    channels: int  # 1 or 3
    shorter_sides: tuple[int, int, int]  # (min, median, max) of the images' shorter side
    aspect: tuple[float, float]  # (min, max) of width / height
    uniform: tuple[int, int] | None  # (height, width) when every image has that size
    has_val: bool = False  # a val/ split of its own: nothing is held out of train
    detail: int | None = None  # smallest side that keeps the images' detail (folders)
    test_images: int = 0  # scored as the run ends (a plan of the head alone counts them)

    @property
    def per_class(self) -> float:
        return self.train_images / max(1, self.classes)

    def describe(self) -> str:
        """'2,000 images of 120-400 px, 2 classes' for the plan's first line."""
        low, _, high = self.shorter_sides
        size = f"{low} px" if low == high else f"{low}-{high} px"
        colour = "grayscale" if self.channels == 1 else "colour"
        return (f"{self.train_images:,} {colour} training images of {size}, "
                f"{self.classes} classes")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def of_dataset(dataset: Dataset) -> Fingerprint:
    """The fingerprint of loaded data (every image has the dataset's one size)."""
    height, width, channels = dataset.input_shape
    counts = dataset.train.labels.bincount(minlength=len(dataset.classes))
    side = min(height, width)
    return Fingerprint(len(dataset.classes), len(dataset.train), int(counts.min()), channels,
                       (side, side, side), (width / height,) * 2, (height, width),
                       dataset.val is not None, test_images=len(dataset.test or ()))


def of_layout(layout: Layout, sample: int = HEADER_SAMPLE, detail: bool = True
              ) -> Fingerprint:
    """The fingerprint of a folder from its file list and a sample of its file headers.

    ``detail``: measure the images' detail (`detail_side`), which decodes a sample of them
    and only a plan from scratch uses: on 32 files of 800-1,400 px, half of them PNG (which
    cannot be decoded at a reduced scale), it took 0.86 s here, a tenth of a short budget;
    without it a fingerprint takes about 0.01 s."""
    train = _training(layout)
    counts = [0] * len(layout.classes)
    for entry in train:
        counts[entry.label] += 1
    spread = _spread(train, sample)
    headers = []
    for entry in spread:
        try:
            headers.append(peek(Path(entry.path)))
        except ImageError:
            continue  # the decoding pass reports it
    if not headers:
        headers = [(64, 64, "RGB")]  # nothing readable: the load that follows says so
    shorter = [min(w, h) for w, h, _ in headers]
    aspects = [w / h for w, h, _ in headers]
    sizes = {(h, w) for w, h, _ in headers}
    channels = 1 if all(mode in GRAY_MODES for _, _, mode in headers) else 3
    present = [n for n in counts if n] or [0]
    uniform = next(iter(sizes)) if len(sizes) == 1 else None
    measured = None if not detail or uniform is not None and max(uniform) <= KEPT_SIDE else \
        detail_side([Path(e.path) for e in spread[:DETAIL_SAMPLE]], channels)
    return Fingerprint(len(layout.classes), len(train), min(present), channels,
                       (min(shorter), int(median(shorter)), max(shorter)),
                       (round(min(aspects), 3), round(max(aspects), 3)),
                       uniform, "val" in layout.splits(), measured,
                       sum(entry.split == "test" for entry in layout.entries))


def _training(layout: Layout) -> list[Entry]:
    """The folder's training files (all of them where it has no train split)."""
    return [entry for entry in layout.entries if entry.split == "train"] or layout.entries


def _spread(entries: list[Entry], sample: int) -> list[Entry]:
    """At most ``sample`` of ``entries``, evenly spaced through them."""
    return entries[::max(1, len(entries) // sample)][:sample]


def flat_share(layout: Layout, sample: int = FLAT_SAMPLE) -> float | None:
    """The median share of an image's pixels within `FLAT_TONE` grey levels of its
    commonest tone, over ``sample`` training images spread through the folder (None when
    none decodes): what sets drawings on a flat background apart from photos. Digits
    enlarged to 96 px gave 0.80 (0.66-0.91), and CIFAR photos enlarged, in colour or
    grayscale, 0.17-0.25 (bench/HISTORY.md, "Grayscale photos under a short budget")."""
    prep = Preprocess(FLAT_SIDE, FLAT_SIDE, 1)
    shares = []
    for entry in _spread(_training(layout), sample):
        try:
            pixels = torch.from_numpy(decode(Path(entry.path), prep)).flatten().long()
        except ImageError:
            continue
        tone = int(pixels.bincount(minlength=256).argmax())
        shares.append(float(((pixels - tone).abs() <= FLAT_TONE).float().mean()))
    return median(shares) if shares else None


def detail_side(paths: list[Path], channels: int) -> int | None:
    """The smallest of `DETAIL_SIDES` that the images survive: shrunk to it and enlarged
    back, they lose under `DETAIL_LOSS` of their variance. Photos upscaled from 32 px pass
    at 32; real photos keep detail at every side and get None (no limit from detail).
    """
    prep = Preprocess(DETAIL_SIDE, DETAIL_SIDE, channels)
    images = []
    for path in paths:
        try:
            images.append(torch.from_numpy(decode(path, prep)))
        except ImageError:
            continue
    if not images:
        return None
    x = torch.stack(images).permute(0, 3, 1, 2).float()  # (N, C, S, S)
    spread = ((x - x.mean(dim=(2, 3), keepdim=True)) ** 2).sum().clamp(min=1e-6)
    for side in DETAIL_SIDES:
        small = F.interpolate(x, size=(side, side), mode="area")  # (N, C, side, side)
        back = F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False)
        if float(((x - back) ** 2).sum() / spread) < DETAIL_LOSS:
            return side
    return None
