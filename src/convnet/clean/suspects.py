"""Likely mislabelled training images: where out-of-fold predictions disagree with the label.

`find_suspects` scores every training image with a model that never trained on it
(`convnet.clean.out_of_fold`), then ranks them with cleanlab's confident learning: an image
is flagged when another class is confidently predicted for it, confidence measured against
each class's own typical probability; the ranking is by the probability left for the given
label (cleanlab's ``self_confidence``), the least likely first.

>>> found = convnet.clean.find_suspects("photos/")  # doctest: +SKIP
>>> found.top(3)[0].suggested  # doctest: +SKIP
'cat'
"""

from __future__ import annotations

import csv
import io
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from convnet import extras
from convnet.atomic import write_atomic, write_json
from convnet.clean import FOLDS, METHODS, out_of_fold
from convnet.data.dataset import Dataset
from convnet.data.scan import Progress
from convnet.errors import ConvnetError
from convnet.plan.resolve import resolve
from convnet.training.callbacks import Callback
from convnet.training.config import TrainConfig

FOLD_SHARE = 3  # a fold's CNN trains 1/3 of the planned epochs: labels are learnt before noise
NEEDS_CLEANLAB = "Ranking suspects needs cleanlab (confident learning)"
SAVED = 100  # suspects kept in a run's suspects.json


@dataclass(frozen=True)
class Suspect:
    """One training image and what the out-of-fold model makes of its label."""

    path: str  # the file, or ``<data> train[i]`` for data without files
    row: int  # its index in the training split
    given: str
    suggested: str  # the most likely class out of fold
    quality: float  # the probability of the given label (low: suspect)
    confidence: float  # the probability of the suggested one
    flagged: bool  # confident learning counts it as a label issue


@dataclass
class Suspects:
    """Every training image, most suspect first, and how they were judged."""

    data: str
    method: str  # what gave the probabilities, in words
    folds: int
    rows: list[Suspect]
    agreement: float  # share of images whose out-of-fold prediction is their label
    seconds: float
    folder: str | None = None  # the dataset's root, for data read from class folders
    images: torch.Tensor | None = field(default=None, repr=False)  # (N, C, H, W) uint8

    @property
    def flagged(self) -> list[Suspect]:
        return [row for row in self.rows if row.flagged]

    def top(self, count: int) -> list[Suspect]:
        """The ``count`` most suspect flagged images."""
        return self.flagged[:count]

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        shown = self.flagged if top is None else self.top(top)
        return {"data": self.data, "method": self.method, "folds": self.folds,
                "images": len(self.rows), "flagged": len(self.flagged),
                "agreement": round(self.agreement, 4), "seconds": round(self.seconds, 1),
                "suspects": [_row_dict(row) for row in shown]}

    def sheet(self, path: Path, count: int) -> Path:
        """A contact sheet PNG of the top ``count``: each image with given -> suggested."""
        from convnet.data.sheet import contact_sheet

        shown = self.top(count)
        if not shown or self.images is None:
            raise ConvnetError("No suspects to draw: every label agrees with the "
                               "out-of-fold predictions.")
        captions = [[f"given {row.given} {row.quality:.2f}", f"-> {row.suggested} "
                     f"{row.confidence:.2f}"] for row in shown]
        return contact_sheet(self.images[[row.row for row in shown]], captions, Path(path))

    def fix_into(self, out: Path, count: int) -> list[tuple[str, str]]:
        """Copy the dataset's folder to ``out`` with the top ``count`` suspects moved to
        their suggested class folders; returns the (old, new) relative paths.

        Raises:
            ConvnetError: for data that is not a folder of class folders, or ``out``
                existing already.
        """
        from convnet.clean.relabel import copy_relabelled

        if self.folder is None or not Path(self.folder).is_dir():
            raise ConvnetError(f"fix_into copies a folder of class folders; data="
                               f"{self.data!r} is not one. Write it out first (convnet "
                               f"datasets export {self.data} DIR --split train) or use the "
                               "CSV of suspects to relabel it.")
        moves = {row.path: row.suggested for row in self.top(count)}
        return copy_relabelled(Path(self.folder), moves, Path(out))

    def save(self, path: Path, count: int = SAVED) -> None:
        """The top ``count`` as JSON (a run's suspects.json, which its report lists)."""
        write_json(Path(path), {**self.to_dict(count), "folder": self.folder})

    def write_csv(self, path: Path) -> None:
        """Every training image ranked, most suspect first (flagged ones before the rest)."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["rank", *_row_dict(self.rows[0])])
        writer.writeheader()
        for rank, row in enumerate(self.rows, start=1):
            writer.writerow({"rank": rank, **_row_dict(row)})
        write_atomic(Path(path), buffer.getvalue().encode())


def _row_dict(row: Suspect) -> dict[str, Any]:
    values = asdict(row)
    values.update(quality=round(row.quality, 4), confidence=round(row.confidence, 4))
    return values


def rank(labels: torch.Tensor, probabilities: torch.Tensor) -> tuple[list[int], set[int]]:
    """(every row, most suspect first; the rows flagged as label issues), by cleanlab.

    Raises:
        ConvnetError: without cleanlab (the ``clean`` extra).
    """
    extras.require("clean", NEEDS_CLEANLAB)
    from cleanlab.filter import find_label_issues

    given = labels.numpy()
    probs = probabilities.double()
    probs = (probs / probs.sum(1, keepdim=True)).numpy()  # cleanlab wants rows summing to 1
    with warnings.catch_warnings():  # it warns about classes with few images; we check them
        warnings.simplefilter("ignore")
        issues = find_label_issues(given, probs, return_indices_ranked_by="self_confidence",
                                   n_jobs=1)
    flagged = [int(i) for i in issues]
    chosen = set(flagged)
    quality = probabilities[torch.arange(len(labels)), labels]  # (N,)
    rest = [i for i in quality.argsort(stable=True).tolist() if i not in chosen]
    return flagged + rest, chosen


def find_suspects(source: str | Path, *, method: str = "auto", folds: int = FOLDS,
                  epochs: int | None = None, arch: str = "auto",
                  image_size: int | None = None, seed: int = 0,
                  notify: Callable[[str], None] = lambda line: None,
                  progress: Progress | None = None, callbacks: Sequence[Callback] = (),
                  features: Progress | None = None) -> Suspects:
    """Rank the training images of ``source`` (any data `train` takes, or a run folder,
    whose data and settings are used) by how likely their label is wrong.

    ``method``: ``cnn`` (brief runs of ``arch``, planned unless given, ``epochs`` each:
    1/3 of the plan's unless given), ``imagenet`` (probes on EfficientNet-Lite0 features;
    the ``pretrained`` extra), or ``auto``: imagenet for colour photos when the extra is
    installed, like the training plan's choice; for a run, how the run itself was trained.
    ``progress`` sees the decoding of a folder, ``callbacks`` the folds' epochs,
    ``features`` the ImageNet features being computed.

    Raises:
        ConvnetError: for one class, a class with fewer images than ``folds``, or
            ``imagenet`` without the extra or on images under 32 px.
    """
    if method not in METHODS:
        raise ConvnetError(f"method must be one of {', '.join(METHODS)}. Received: "
                           f"method={method!r}.")
    extras.require("clean", NEEDS_CLEANLAB)  # before the folds train, not after
    started = time.perf_counter()
    run_config = _run_config(source)
    config = run_config or TrainConfig.from_dict({"data": str(source), "seed": seed,
                                                  "image_size": image_size,
                                                  "epochs": epochs, "arch": arch})
    if method == "auto":
        method = _auto(config, run_config is not None)
    if method == "imagenet":
        dataset, probabilities, how = _by_features(config, started, folds, notify,
                                                   (progress, features))
    else:
        dataset, probabilities, how = _by_cnn(config, run_config is not None, epochs,
                                              folds, (started, notify, progress, callbacks))
    labels = dataset.train.labels
    order, flagged = rank(labels, probabilities)
    paths = _paths(dataset)
    classes = dataset.classes
    best = probabilities.max(1)
    rows = [Suspect(paths[i], i, classes[int(labels[i])], classes[int(best.indices[i])],
                    float(probabilities[i, labels[i]]), float(best.values[i]), i in flagged)
            for i in order]
    agreement = float((best.indices == labels).float().mean())
    folder = dataset.report.root if dataset.report is not None else None
    return Suspects(dataset.name, how, folds, rows, agreement,
                    time.perf_counter() - started, folder, dataset.train.images)


def _run_config(source: str | Path) -> TrainConfig | None:
    """A run folder's saved config (its data, network and settings), else None."""
    if not (Path(source) / "model.json").is_file():
        return None
    from convnet.runs.format import read_run

    return read_run(Path(source))[0].config


def _auto(config: TrainConfig, is_run: bool) -> str:
    if is_run:
        return "imagenet" if config.fine_tunes else "cnn"
    from convnet.plan.choose import applies

    return "imagenet" if applies(config) else "cnn"


def _by_cnn(config: TrainConfig, is_run: bool, epochs: int | None, folds: int,
            hooks: tuple) -> tuple[Dataset, torch.Tensor, str]:
    started, notify, progress, callbacks = hooks
    # a run's own settings are planned already (its size, its epochs), and its copies kept
    resolved = resolve(replace(config, dedupe=False) if is_run else config, started=started,
                       progress=progress)
    dataset, planned = resolved.dataset, resolved.config
    planned = replace(planned, epochs=epochs or out_of_fold.brief_epochs(
        planned.epochs or 1, FOLD_SHARE))
    fold = out_of_fold.deal(dataset.train.labels, folds, config.seed)
    found = out_of_fold.cnn_probabilities(dataset, planned, fold, notify, callbacks)
    return dataset, found, (f"{folds}-fold brief runs of the CNN ({planned.arch[:40]}, "
                            f"{planned.epochs} epochs each)")


def _by_features(config: TrainConfig, started: float, folds: int, notify, bars: tuple
                 ) -> tuple[Dataset, torch.Tensor, str]:
    progress, computed = bars
    from convnet.features import imagenet as imagenet_features
    from convnet.runs.builtin import IMAGENET

    # the weights (a clear error without the extra) and the data at the planned size; no
    # training is planned, as none follows
    resolved = resolve(replace(config, init=IMAGENET, arch="auto", dedupe=False),
                       started=started, plan=False, progress=progress, notify=notify)
    config, dataset = resolved.config, resolved.dataset
    fold = out_of_fold.deal(dataset.train.labels, folds, config.seed)
    images, side = dataset.train.images, dataset.input_shape[0]
    notify(f"computing ImageNet features of {len(images):,} images at {side} px (cached for "
           "the next time)")
    found = imagenet_features.pooled(lambda rows: images[list(rows)], len(images),
                                     computed, config.device)  # (N, 1280)
    probabilities = out_of_fold.probe_probabilities(found, dataset.train.labels,
                                                    len(dataset.classes), fold, notify)
    return dataset, probabilities, (f"{folds}-fold probes on EfficientNet-Lite0 ImageNet "
                                    f"features at {side} px")


def _paths(dataset: Dataset) -> list[str]:
    if dataset.report is not None and "train" in dataset.report.rows:
        return dataset.report.rows["train"]
    return [f"{dataset.name} train[{i}]" for i in range(len(dataset.train))]
