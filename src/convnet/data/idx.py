"""The IDX format of the official MNIST (and Fashion-MNIST) files, gzip-compressed or not."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from convnet.data.dataset import Dataset, Split
from convnet.errors import ConvnetError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file: a 4-byte magic (0, 0, dtype, ndim), big-endian sizes, the data.

    Raises:
        ConvnetError: if the file is not IDX or its size disagrees with its header.
    """
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise ConvnetError(f"{path} is a damaged gzip file ({error}). Replace it with an "
                               "intact copy of the official file.") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _DTYPES:
        raise ConvnetError(f"{path} is not an IDX file: it must start with the bytes 00 00, "
                           f"a type code and a dimension count. Received: {raw[:4].hex(' ')}.")
    ndim = raw[3]
    dims = tuple(int(d) for d in np.frombuffer(raw[4 : 4 + 4 * ndim], ">u4"))
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = 4 + 4 * ndim + int(np.prod(dims)) * dtype.itemsize
    if len(dims) != ndim or len(raw) != expected:
        raise ConvnetError(f"{path} is truncated or padded: its header promises {expected} "
                           f"bytes for shape {dims}. Received: {len(raw)} bytes.")
    return np.frombuffer(raw, dtype, offset=4 + 4 * ndim).reshape(dims)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"),
                 stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def has_idx_files(folder: Path) -> bool:
    return all(_find(folder, stem) for stem in STEMS["train"])


def _split(folder: Path, part: str) -> Split | None:
    images_path, labels_path = (_find(folder, stem) for stem in STEMS[part])
    if images_path is None or labels_path is None:
        return None
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ConvnetError(f"{folder}: the {part} images and labels do not match: expected "
                           f"(N, H, W) images and N labels. Received: images {images.shape}, "
                           f"labels {labels.shape}.")
    return Split(torch.from_numpy(images.astype(np.uint8)).unsqueeze(1),  # (N, 1, H, W)
                 torch.from_numpy(labels.astype(np.int64)))


def load_idx_folder(folder: Path, name: str | None = None) -> Dataset:
    """A folder laid out like the official MNIST release (train-* and, optionally, t10k-*)."""
    folder = Path(folder)
    train = _split(folder, "train")
    if train is None:
        raise ConvnetError(f"{folder} holds no IDX training files. Expected "
                           "train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] "
                           "(the official MNIST file names).")
    test = _split(folder, "test")
    labels = train.labels if test is None else torch.cat([train.labels, test.labels])
    if labels.min() < 0:
        raise ConvnetError(f"{folder}: labels must be non-negative class indices. "
                           f"Received: {int(labels.min())}.")
    classes = [str(index) for index in range(int(labels.max()) + 1)]
    return Dataset(name or folder.name, classes, train, test, source=str(folder.resolve()),
                   flip_ok=False)
