"""A dataset in memory: uint8 images and integer labels, with its class names."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # imported for the annotations only: these modules import this one
    from convnet.datasets.scan import Report
    from convnet.preprocess import Preprocess


@dataclass(frozen=True)
class Split:
    """Images and labels of one split, kept as compact tensors."""

    images: torch.Tensor  # (N, C, H, W) uint8
    labels: torch.Tensor  # (N,) int64, indices into Dataset.classes

    def __post_init__(self) -> None:
        assert self.images.dtype == torch.uint8 and self.images.dim() == 4, self.images.shape
        assert self.labels.shape == (self.images.shape[0],), (self.labels.shape, self.images.shape)

    def __len__(self) -> int:
        return self.labels.shape[0]

    def subset(self, index: torch.Tensor) -> Split:
        return Split(self.images[index], self.labels[index])

    def split_stratified(self, fraction: float, seed: int) -> tuple[Split, Split | None]:
        """Hold out ``fraction`` of every class (at least one image of each class).

        Returns:
            (rest, held_out); held_out is None when ``fraction`` is 0.
        """
        if fraction <= 0:
            return self, None
        generator = torch.Generator().manual_seed(seed)
        keep, held = [], []
        for label in self.labels.unique():
            members = torch.nonzero(self.labels == label).flatten()
            members = members[torch.randperm(len(members), generator=generator)]
            count = min(max(1, round(fraction * len(members))), len(members) - 1)
            held.append(members[:count])
            keep.append(members[count:])
        kept, held_out = torch.cat(keep).sort().values, torch.cat(held).sort().values
        return self.subset(kept), self.subset(held_out)


@dataclass(frozen=True)
class Dataset:
    """A named dataset: a training split, an optional test split and the class names."""

    name: str
    classes: list[str]
    train: Split
    test: Split | None
    source: str  # where it came from, for model.json and `convnet datasets`
    val: Split | None = None  # a validation split of its own (else one is held out of train)
    report: Report | None = None  # folder datasets: what the scan skipped and why
    preprocess: Preprocess | None = None  # how the images were made from files
    flip_ok: bool = True  # False where a mirror image means something else (digits)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the images."""
        _, channels, height, width = self.train.images.shape
        return height, width, channels

    def fingerprint(self) -> str:
        """SHA-256 over class names, images and labels: two runs on the same data agree."""
        digest = hashlib.sha256(json.dumps(self.classes).encode())
        for split in (self.train, self.val, self.test):
            if split is not None:
                digest.update(split.images.contiguous().numpy().tobytes())
                digest.update(split.labels.contiguous().numpy().tobytes())
        return digest.hexdigest()
