"""A dataset in memory: uint8 images and integer labels, with its class names."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch

from convnet.axes import chw_to_hwc
from convnet.errors import ConvnetError

if TYPE_CHECKING:  # imported for the annotations only: these modules import this one
    from convnet.data.preprocess import Preprocess
    from convnet.data.scan import Report


@dataclass(frozen=True)
class Split:
    """Images and labels of one split, kept as compact tensors."""

    images: torch.Tensor  # (N, C, H, W) uint8
    labels: torch.Tensor  # (N,) int64, indices into Dataset.classes

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ConvnetError("images must be uint8 of shape (N, C, H, W). Received: images "
                               f"of dtype {self.images.dtype} and shape "
                               f"{tuple(self.images.shape)}.")
        if self.labels.shape != (self.images.shape[0],):
            raise ConvnetError(f"labels must hold one label per image, shape "
                               f"({self.images.shape[0]},). Received: labels of shape "
                               f"{tuple(self.labels.shape)}.")

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
        kept, held_out = held_out_indices(self.labels, fraction, seed)
        return self.subset(kept), self.subset(held_out)


def held_out_indices(labels: torch.Tensor, fraction: float, seed: int
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """(kept, held out) indices, each sorted: ``fraction`` of every class held out, at least
    one image per class and never all of them."""
    generator = torch.Generator().manual_seed(seed)
    keep, held = [], []
    for label in labels.unique():
        members = torch.nonzero(labels == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        count = min(max(1, round(fraction * len(members))), len(members) - 1)
        held.append(members[:count])
        keep.append(members[count:])
    return torch.cat(keep).sort().values, torch.cat(held).sort().values


# An unset share holds out 10% of the training images, but at least FEWEST_HELD of them (up
# to 20%, fastai's default): the temperature, the prediction sets' threshold and the unknown
# verdict's cut are all read off the validation images, and on 100 of them each moves by
# points from one draw to the next (on a car/truck fine-tune, the median test ECE after
# calibration fell from 2.1% to 1.9% between 100 and 200 images).
DEFAULT_SHARE, MOST_SHARE, FEWEST_HELD = 0.1, 0.2, 200


def validation_share(given: float | None, train_images: int) -> float:
    """The share of each training class held out: ``given``, or when unset the default
    above for ``train_images`` images."""
    if given is not None:
        return given
    return min(MOST_SHARE, max(DEFAULT_SHARE, FEWEST_HELD / max(1, train_images)))


def images_digest(images: torch.Tensor) -> str:
    """SHA-256 of uint8 images (N, C, H, W): their shape and every pixel (what a cache
    or a reuse of their scores is keyed by)."""
    digest = hashlib.sha256(str(tuple(images.shape)).encode())
    digest.update(images.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _digest(indices: torch.Tensor) -> str:
    return hashlib.sha256(indices.to(torch.int64).numpy().tobytes()).hexdigest()


@dataclass(frozen=True)
class Validation:
    """Where a run's validation images come from; saved in the run, so that the report draws
    exactly the images training held out (`draw`, the one function both call).

    source: ``held-out`` (``fraction`` of every training class, chosen with ``seed``),
    ``dataset`` (the dataset's own val/ split) or ``none``.
    """

    source: str
    fraction: float = 0.0
    seed: int = 0
    count: int = 0  # validation images
    indices_sha256: str | None = None  # held-out: SHA-256 of the held-out indices (int64)
    # the head alone was fitted again on these images once scored on them
    # (`convnet.training.setup._refit`): the saved network has seen them
    taught: bool = False

    @classmethod
    def for_run(cls, dataset: Dataset, fraction: float | None, seed: int) -> Validation:
        """The rule for a new run: the dataset's own split if it has one, else hold out
        ``fraction`` (None: `validation_share`'s default)."""
        if dataset.val is not None:
            return cls("dataset", count=len(dataset.val))
        fraction = validation_share(fraction, len(dataset.train))
        if fraction <= 0:
            return cls("none")
        _, held = held_out_indices(dataset.train.labels, fraction, seed)
        if len(held) == 0:  # one image per class: nothing can be spared for validation
            return cls("none")
        return cls("held-out", fraction, seed, len(held), _digest(held))

    def draw(self, dataset: Dataset) -> tuple[Split, Split | None]:
        """(training split, validation split) of ``dataset`` by this rule.

        Raises:
            ConvnetError: if the held-out images differ from the ones recorded (the data
                changed since the run was trained).
        """
        if self.source == "dataset" and dataset.val is not None:
            return dataset.train, dataset.val
        if self.source != "held-out":
            return dataset.train, None
        kept, held = held_out_indices(dataset.train.labels, self.fraction, self.seed)
        if self.indices_sha256 is not None and _digest(held) != self.indices_sha256:
            raise ConvnetError(
                f"The data {dataset.name!r} no longer gives the validation images this run "
                "held out (its training files changed since). Give the data the run was "
                "trained on, or retrain.")
        return dataset.train.subset(kept), dataset.train.subset(held)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Validation:
        return cls(**values)


@dataclass(frozen=True, repr=False)
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

    def __repr__(self) -> str:
        sizes = ", ".join(f"{len(split):,} {name}" for name, split in (
            ("train", self.train), ("val", self.val), ("test", self.test)) if split is not None)
        return (f"Dataset({self.name!r}: {len(self.classes)} classes, "
                f"{'×'.join(map(str, self.input_shape))}, {sizes})")

    def _repr_html_(self) -> str:
        """In a notebook: classes and counts, sample images, and the folder's check."""
        from convnet.data.display import dataset_html

        return dataset_html(self)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the images."""
        return chw_to_hwc(tuple(self.train.images.shape[1:]))

    def fingerprint(self) -> str:
        """SHA-256 over class names, images and labels: two runs on the same data agree."""
        digest = hashlib.sha256(json.dumps(self.classes).encode())
        for split in (self.train, self.val, self.test):
            if split is not None:
                digest.update(split.images.contiguous().numpy().tobytes())
                digest.update(split.labels.contiguous().numpy().tobytes())
        return digest.hexdigest()
