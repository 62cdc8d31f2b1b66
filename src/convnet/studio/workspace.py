"""A studio workspace: one folder holding the uploaded datasets, the jobs and their runs.

    DIR/datasets/NAME/       class folders, optionally under train/ (val/, test/)
    DIR/jobs/ID.json         a job: its dataset, options and state (`Job`)
    DIR/jobs/ID.progress.json  what its training process reports as it goes
    DIR/runs/ID/             the run it makes (the folder `convnet train --out` writes)

Everything is a plain file written atomically, so a restarted studio finds it all again.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from convnet.atomic import unused_path, write_json
from convnet.data.layout import find_layout
from convnet.errors import ConvnetError
from convnet.studio.unzip import ZipRefused, safe_name, unpack
from convnet.training.config import TrainConfig

THUMB = 64  # the side of a class card's thumbnails, in pixels

STATES = ("queued", "running", "finished", "failed", "cancelled")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
FIXED = ("data", "resume")  # options the studio sets itself


@dataclass
class Job:
    """One training job, as kept in DIR/jobs/ID.json."""

    id: str
    dataset: str
    options: dict[str, Any]
    state: str = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    ended: float | None = None
    error: str | None = None
    cancel: bool = False  # asked to stop: it stops at a checkpoint
    pid: int | None = None
    # when that process started (`convnet.processes`), so that a later process given the
    # same id after a restart is not taken for it
    pid_started: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Workspace:
    """The files of one studio folder."""

    def __init__(self, root: Path):
        self.root = Path(root)
        for name in ("datasets", "jobs", "runs"):
            (self.root / name).mkdir(parents=True, exist_ok=True)

    # datasets

    def dataset_dir(self, name: str) -> Path:
        folder = self.root / "datasets" / name
        if name != safe_name(name) or not folder.is_dir():
            raise KeyError(name)
        return folder

    def add_dataset(self, name: str, data: bytes) -> dict[str, Any]:
        """Unpack a zip of class folders as dataset ``name``.

        Raises:
            ZipRefused: for a zip refused by `convnet.studio.unzip` or no classes in it.
            FileExistsError: when the name is taken.
        """
        name = safe_name(name, "dataset name")
        target = self.root / "datasets" / name
        if target.exists():
            raise FileExistsError(name)
        staging = self.root / "datasets" / f".{name}.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            unpack(data, staging)
            _check_classes(staging)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.describe(name)

    def create(self, name: str) -> dict[str, Any]:
        """An empty dataset (a project) that classes and images are added to."""
        name = safe_name(name, "dataset name")
        (self.root / "datasets" / name / "train").mkdir(parents=True, exist_ok=True)
        return self.describe(name)

    def _class_dir(self, name: str, cls: str, split: str) -> Path:
        if split not in ("train", "test"):
            raise ZipRefused(f"split must be train or test, not {split!r}")
        folder = self.dataset_dir(name)
        cls = safe_name(cls, "class name")
        if split == "train" and not (folder / "train").is_dir():
            return folder / cls  # a dataset uploaded without train/ keeps its layout
        return folder / split / cls

    def add_class(self, name: str, cls: str) -> dict[str, Any]:
        self._class_dir(name, cls, "train").mkdir(parents=True, exist_ok=True)
        return self.describe(name)

    def rename_class(self, name: str, cls: str, new: str) -> dict[str, Any]:
        """Rename class ``cls`` to ``new`` in every split.

        Raises:
            KeyError: for an unknown class. FileExistsError: when ``new`` is taken.
        """
        moves = [(self._class_dir(name, cls, split), self._class_dir(name, new, split))
                 for split in ("train", "test")]
        if not moves[0][0].is_dir():
            raise KeyError(cls)
        if any(target.exists() for _, target in moves):
            raise FileExistsError(new)
        for source, target in moves:
            if source.is_dir():
                os.replace(source, target)
        return self.describe(name)

    def add_images(self, name: str, cls: str, files: list[tuple[str, bytes]],
                   split: str = "train") -> dict[str, Any]:
        """Add image files to class ``cls`` of dataset ``name`` (the class made if new)."""
        target = self._class_dir(name, cls, split)
        target.mkdir(parents=True, exist_ok=True)
        for filename, data in files:
            stem = Path(safe_name(Path(filename).name or "image", "file name"))
            suffix = stem.suffix.lower() if stem.suffix.lower() in IMAGE_SUFFIXES else ".png"
            unused_path(target / f"{stem.stem}{suffix}").write_bytes(data)
        return self.describe(name)

    def thumbnail(self, name: str, cls: str, index: int) -> bytes:
        """A PNG, at most `THUMB` px a side, of the ``index``-th training image of class
        ``cls`` (by file name), for the class's card.

        Raises:
            KeyError: for an unknown dataset or class, or no image at ``index``.
            ConvnetError: for a file that is not a readable image.
        """
        from convnet.data.preprocess import ImageError, thumbnail_png

        folder = self._class_dir(name, cls, "train")
        files = sorted(f for f in folder.rglob("*") if f.is_file()
                       and not f.name.startswith(".")) if folder.is_dir() else []
        if not 0 <= index < len(files):
            raise KeyError(index)
        try:
            return thumbnail_png(files[index], THUMB)
        except ImageError:
            raise ConvnetError(f"{files[index].name} is not a readable image") from None

    def datasets(self) -> list[dict[str, Any]]:
        return [self.describe(p.name) for p in sorted((self.root / "datasets").iterdir())
                if p.is_dir() and not p.name.startswith(".")]

    def describe(self, name: str) -> dict[str, Any]:
        """Classes (empty ones too) and files per split and class, counted from the folders
        (nothing decoded); ``problem`` says why it cannot train yet, if it cannot."""
        folder = self.dataset_dir(name)
        split_dirs = {split: folder / split for split in ("train", "val", "test")
                      if (folder / split).is_dir()} if (folder / "train").is_dir() \
            else {"train": folder}
        counts = {split: {cls.name: sum(1 for f in cls.rglob("*")
                                        if f.is_file() and not f.name.startswith("."))
                          for cls in sorted(where.iterdir())
                          if cls.is_dir() and not cls.name.startswith(".")}
                  for split, where in split_dirs.items()}
        classes = sorted({cls for found in counts.values() for cls in found})
        try:
            find_layout(folder)
            problem = None
        except ConvnetError as error:
            problem = str(error)
        return {"name": name, "classes": classes, "counts": counts,
                "images": sum(sum(found.values()) for found in counts.values()),
                "problem": problem}

    # jobs

    def new_job(self, dataset: str, options: dict[str, Any]) -> Job:
        """A queued job; its options are checked now, as `convnet train` would.

        Raises:
            KeyError: for an unknown dataset. ConvnetError: for a bad option.
        """
        folder = self.dataset_dir(dataset)
        taken = sorted(set(options) & set(FIXED))
        if taken:
            raise ConvnetError(f"options may not set {', '.join(taken)}: the studio sets "
                               "them from the job.")
        TrainConfig.from_dict({**options, "data": str(folder)})  # raises for a bad option
        number = 1 + max((int(p.stem.split("-")[1]) for p in self._job_files()), default=0)
        job = Job(f"job-{number:04d}", dataset, dict(options))
        self.save(job)
        return job

    def _job_files(self) -> list[Path]:
        return sorted(p for p in (self.root / "jobs").glob("job-*.json")
                      if p.stem.count(".") == 0)

    def jobs(self) -> list[Job]:
        return [self.job(p.stem) for p in self._job_files()]

    def job(self, id: str) -> Job:
        path = self.root / "jobs" / f"{id}.json"
        if id != safe_name(id) or not path.is_file():
            raise KeyError(id)
        return Job(**json.loads(path.read_text()))

    def save(self, job: Job) -> None:
        write_json(self.root / "jobs" / f"{job.id}.json", job.to_dict())

    def progress(self, id: str) -> dict[str, Any]:
        try:
            return json.loads((self.root / "jobs" / f"{id}.progress.json").read_text())
        except (OSError, ValueError):
            return {}

    def run_dir(self, id: str) -> Path:
        return self.root / "runs" / id

    def early_dir(self, id: str) -> Path:
        """Where job ``id``'s model so far is written while it trains."""
        return self.root / "jobs" / f"{id}.early"


def _check_classes(folder: Path) -> None:
    try:
        find_layout(folder)
    except ConvnetError as error:
        raise ZipRefused(f"the zip is not a dataset of class folders: {error}") from None

