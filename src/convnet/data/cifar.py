"""CIFAR-10's binary release (``cifar-10-binary.tar.gz``), read without pickle.

Each ``*.bin`` file is a run of 3,073-byte records: one label byte, then a 32×32 image as
1,024 red, 1,024 green and 1,024 blue bytes.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import torch

from convnet.data.dataset import Dataset, Split
from convnet.errors import ConvnetError

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"]
TRAIN_FILES = [f"data_batch_{n}.bin" for n in range(1, 6)]
TEST_FILE = "test_batch.bin"
ARCHIVE = "cifar-10-binary.tar.gz"
INNER = "cifar-10-batches-bin"
RECORD = 1 + 3 * 32 * 32


def parse_batches(blobs: list[bytes], where: str) -> Split:
    """Records -> Split of (N, 3, 32, 32) uint8 images and their labels."""
    raw = b"".join(blobs)
    if len(raw) % RECORD:
        raise ConvnetError(f"{where}: {len(raw)} bytes is not a whole number of "
                           f"{RECORD}-byte CIFAR-10 records; the file is truncated.")
    records = np.frombuffer(raw, np.uint8).reshape(-1, RECORD)  # (N, 3073)
    labels = records[:, 0].astype(np.int64)
    if labels.size and labels.max() >= len(CLASSES):
        raise ConvnetError(f"{where}: label {labels.max()} is not a CIFAR-10 class (0-9).")
    images = records[:, 1:].reshape(-1, 3, 32, 32)  # channel planes, row-major
    return Split(torch.from_numpy(images.copy()), torch.from_numpy(labels))


def _batch_folder(folder: Path) -> Path | None:
    for candidate in (folder, folder / INNER):
        if all((candidate / name).is_file() for name in TRAIN_FILES):
            return candidate
    return None


def has_cifar_files(folder: Path) -> bool:
    return _batch_folder(folder) is not None or (folder / ARCHIVE).is_file()


def read_archive(archive: Path) -> dict[str, bytes]:
    """The ``*.bin`` members of the official archive, read in memory (nothing extracted,
    so ``../`` paths or links inside it can do no harm); unsafe members are refused."""
    wanted = {*TRAIN_FILES, TEST_FILE}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                name = member.name
                if name.startswith(("/", "\\")) or ".." in Path(name).parts or (
                        member.issym() and member.linkname.startswith("/")):
                    raise ConvnetError(f"{archive}: member {name!r} points outside the "
                                       "archive; refusing it. Use the official file.")
                if member.isfile() and Path(name).name in wanted:
                    found[Path(name).name] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ConvnetError(f"{archive} is not a readable .tar.gz ({error}). Replace it with "
                           "the official cifar-10-binary.tar.gz.") from None
    missing = sorted(wanted - set(found))
    if missing:
        raise ConvnetError(f"{archive} lacks {', '.join(missing)}; it is not the CIFAR-10 "
                           "binary release (cifar-10-binary.tar.gz).")
    return found


def load_cifar_folder(folder: Path, name: str | None = None) -> Dataset:
    """A folder with the extracted ``*.bin`` files, or with the official archive."""
    folder = Path(folder)
    batches = _batch_folder(folder)
    if batches is not None:
        blobs = {n: (batches / n).read_bytes() for n in TRAIN_FILES
                 + ([TEST_FILE] if (batches / TEST_FILE).is_file() else [])}
    else:
        blobs = read_archive(folder / ARCHIVE)
    train = parse_batches([blobs[n] for n in TRAIN_FILES], str(folder))
    test = parse_batches([blobs[TEST_FILE]], str(folder)) if TEST_FILE in blobs else None
    return Dataset(name or folder.name, list(CLASSES), train, test,
                   source=f"CIFAR-10 binary release in {folder.resolve()}")
