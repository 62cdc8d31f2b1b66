"""The run format: what a run folder holds, typed, and the one reader and one writer.

A run folder::

    model.safetensors   the weights (safetensors: no pickle, ever)
    model.json          a `RunRecord`: spec, classes, input, preprocessing, normalisation,
                        the resolved config, the validation rule, data, metrics, versions
    metrics.csv         one row per epoch (`convnet.training.callbacks.EpochStats`)
    data_report.json    folder data only: what the scan skipped and why

Training, `Run`, the report and the command line all go through `write_run` / `read_run`
and `RunRecord`; nothing else reads model.json by string keys.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import platform
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from convnet._version import __version__
from convnet.atomic import write_atomic, write_json
from convnet.data.augment import Augment
from convnet.data.dataset import Validation
from convnet.data.pixels import Normalization
from convnet.data.preprocess import Preprocess
from convnet.errors import RunError
from convnet.runs.calibration import NONE, Calibration
from convnet.runs.folders import DATA_REPORT, META, METRICS, START, WEIGHTS
from convnet.training import checkpoint
from convnet.training.callbacks import Callback, EpochStats
from convnet.training.config import TrainConfig

FORMAT = 3  # 2 added "validation", 3 "calibration"; bump when old readers would misread a run
# format 1 runs have no "validation": the rule is drawn again from config; formats 1 and 2
# have no "calibration": they answer with the softmax as it is
READABLE = (1, 2, 3)


def library_versions() -> dict[str, str]:
    return {"convnet": __version__, "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__}


@dataclass(frozen=True)
class DataInfo:
    name: str
    source: str
    fingerprint: str  # SHA-256 over classes, images and labels (`Dataset.fingerprint`)
    train: int  # images per split, as trained
    val: int
    test: int
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"path", "reason"}


@dataclass(frozen=True)
class Metrics:
    best_epoch: int
    val_acc: float | None
    val_loss: float | None
    test: dict[str, Any] | None  # accuracy, loss, macro, balanced_accuracy
    stopped_early: int | None = None  # the epoch `patience` stopped training at


@dataclass(frozen=True)
class RunRecord:
    """What model.json holds. ``to_dict``/``from_dict`` are its JSON form."""

    spec: str
    arch: str  # as resolved: ``auto`` is recorded as the preset it picked
    classes: list[str]
    input_shape: tuple[int, int, int]  # (H, W, C)
    preprocess: Preprocess
    normalization: Normalization
    config: TrainConfig
    augment: Augment
    balance: str
    tta: str  # "flip" or "none"
    speed: dict[str, Any]
    data: DataInfo
    validation: Validation | None  # None only in format-1 runs
    params: int
    metrics: Metrics
    weights_sha256: str
    plan: dict[str, Any] | None = None  # how unset options were planned (`Plan.to_dict`)
    calibration: Calibration = NONE  # how logits become probabilities (format 3 on)
    # the "unknown" detector's file and what it was fitted on (None: the run has none)
    unknown: dict[str, Any] | None = None
    # Other names of the classes, in their order, that data folders may use (ImageNet's
    # synset ids); None for most runs
    class_ids: list[str] | None = None
    versions: dict[str, str] = field(default_factory=library_versions)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(
        timespec="seconds"))
    format: int = FORMAT

    @property
    def flip_tta(self) -> bool:
        return self.tta == "flip"

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format, "convnet_version": self.versions.get("convnet"),
            "created": self.created, "spec": self.spec, "arch": self.arch,
            "classes": list(self.classes), "input_shape": list(self.input_shape),
            "preprocess": self.preprocess.to_dict(),
            "normalization": self.normalization.to_dict(), "config": self.config.to_dict(),
            "augment": self.augment.to_dict(), "balance": self.balance, "tta": self.tta,
            "speed": self.speed, "versions": self.versions, "data": asdict(self.data),
            "validation": None if self.validation is None else self.validation.to_dict(),
            "params": self.params, "metrics": asdict(self.metrics),
            "weights": {"file": WEIGHTS, "sha256": self.weights_sha256}, "plan": self.plan,
            "calibration": self.calibration.to_dict(), "unknown": self.unknown,
            **({} if self.class_ids is None else {"class_ids": list(self.class_ids)}),
        }

    @classmethod
    def from_dict(cls, meta: dict[str, Any]) -> RunRecord:
        """Parse model.json; raises KeyError/TypeError/ValueError on a malformed one."""
        shape = tuple(int(v) for v in meta["input_shape"])
        preprocess = meta.get("preprocess") or dict(zip(("height", "width", "channels"), shape))
        validation = meta.get("validation")
        return cls(
            spec=meta["spec"], arch=meta.get("arch", meta["spec"]),
            classes=list(meta["classes"]), input_shape=shape,
            preprocess=Preprocess.from_dict(preprocess),
            normalization=Normalization.from_dict(meta["normalization"]),
            config=_config(meta.get("config", {})), augment=Augment(**meta.get("augment", {})),
            balance=meta.get("balance", "none"), tta=meta.get("tta", "none"),
            speed=meta.get("speed", {}), data=DataInfo(**meta["data"]),
            validation=None if validation is None else Validation.from_dict(validation),
            params=int(meta["params"]), metrics=Metrics(**meta["metrics"]),
            weights_sha256=meta.get("weights", {}).get("sha256", ""), plan=meta.get("plan"),
            calibration=Calibration.from_dict(meta.get("calibration")),
            unknown=meta.get("unknown"),
            class_ids=meta.get("class_ids"),
            versions=dict(meta.get("versions", {})), created=meta.get("created", ""),
            format=int(meta["format"]))


def _config(values: dict[str, Any]) -> TrainConfig:
    """The saved config; keys a later version dropped are ignored, new ones take defaults."""
    known = {spec.name for spec in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in values.items() if k in known})


def weights_bytes(network: torch.nn.Module | dict[str, torch.Tensor]) -> bytes:
    """The network's weights (or a state dict of them) as safetensors bytes (contiguous
    CPU tensors)."""
    weights = network if isinstance(network, dict) else network.state_dict()
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in weights.items()}
    return save_safetensors(state)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def metrics_csv(history: list[EpochStats]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[spec.name for spec in fields(EpochStats)])
    writer.writeheader()
    writer.writerows(stats.row() for stats in history)
    return buffer.getvalue().encode()


def write_metrics(folder: Path, history: list[EpochStats]) -> None:
    write_atomic(folder / METRICS, metrics_csv(history))


class MetricsFile(Callback):
    """metrics.csv in the run's folder, rewritten from the state's history after every
    epoch (the loop records the epoch in the state before it calls the callbacks)."""

    def __init__(self, folder: Path, state):
        self.folder, self.state = folder, state

    def on_epoch_end(self, stats: EpochStats) -> None:
        write_metrics(self.folder, self.state.history)


def read_metrics(folder: Path) -> list[dict[str, float | None]]:
    """metrics.csv as rows of numbers (None for an empty cell).

    Raises:
        RunError: if the file is missing or damaged.
    """
    path = Path(folder) / METRICS
    try:
        with path.open(newline="") as handle:
            return [{key: float(value) if value not in ("", None) else None
                     for key, value in row.items()} for row in csv.DictReader(handle)]
    except FileNotFoundError:
        raise RunError(f"{path} is missing: the run's per-epoch history is gone, so its "
                       "curves cannot be drawn. Restore the file or retrain.") from None
    except (ValueError, UnicodeDecodeError, csv.Error) as error:
        raise RunError(f"{path} is damaged ({error}). Restore the file or retrain.") from None


def write_run(folder: Path, record: RunRecord, weights: bytes,
              data_report: dict[str, Any] | None = None,
              files: dict[str, bytes] | None = None) -> None:
    """Write a finished run's weights, model.json (and data_report.json, and ``files``:
    name -> bytes, e.g. the unknown detector) into ``folder``.

    ``weights`` are `weights_bytes`; their SHA-256 must be the record's.
    """
    assert sha256(weights) == record.weights_sha256, "record and weights disagree"
    write_atomic(folder / WEIGHTS, weights)
    for name, data in (files or {}).items():
        write_atomic(folder / name, data)
    if data_report is not None:
        write_json(folder / DATA_REPORT, data_report)
    write_json(folder / META, record.to_dict())  # last: a run is finished once it exists


def _within(where: dict[str, Any]) -> str:
    """`` step 120`` inside an epoch, or `` (end)`` after a whole one."""
    if where.get("in_epoch"):
        return f" step {where['in_epoch'][1]}"
    return " (its end)"


def _nearest_run(folder: Path) -> str:
    """`` Did you mean 'runs/x'?`` for the closest-named run folder beside ``folder``."""
    try:
        runs = [p.name for p in folder.parent.iterdir() if (p / META).is_file()]
    except OSError:
        return ""
    close = difflib.get_close_matches(folder.name, runs, n=1, cutoff=0.6)
    return f" Did you mean {str(folder.parent / close[0])!r}?" if close else ""


def _read_meta(folder: Path) -> dict[str, Any]:
    if folder.is_file():
        raise RunError(f"{str(folder)!r} is a file, not a run folder. Give the folder that "
                       "`convnet train` wrote (it holds model.json and model.safetensors).")
    if not folder.is_dir():
        raise RunError(f"Run folder {str(folder)!r} does not exist.{_nearest_run(folder)} "
                       "Give the folder that `convnet train` wrote (it holds model.json and "
                       "model.safetensors).")
    missing = [name for name in (META, WEIGHTS) if not (folder / name).is_file()]
    where = checkpoint.info(folder) if META in missing else None
    if where is not None:
        raise RunError(f"{str(folder)!r} is an unfinished run, stopped at epoch "
                       f"{where['epoch'] + 1 if where.get('in_epoch') else where['epoch']}"
                       f"{_within(where)}; it is not a trained model yet. Resume it with: "
                       f"convnet train --resume {folder}")
    if META in missing and (folder / START).is_file():
        raise RunError(f"{str(folder)!r} is a run that stopped before its first checkpoint; "
                       f"it is not a trained model yet. Start it again with: convnet train "
                       f"--resume {folder}")
    if missing:
        raise RunError(f"Run folder {str(folder)!r} is missing {' and '.join(missing)}; it is "
                       "not a complete run. Train again or point at another run folder.")
    try:
        meta = json.loads((folder / META).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunError(f"{folder / META} is not valid JSON ({error}); the run is damaged.") \
            from None
    if not isinstance(meta, dict) or meta.get("format") not in READABLE:
        version = meta.get("convnet_version", "unknown") if isinstance(meta, dict) else "?"
        raise RunError(f"{folder} was written by convnet {version} in run format "
                       f"{meta.get('format') if isinstance(meta, dict) else '?'}; this convnet "
                       f"{__version__} reads formats {', '.join(map(str, READABLE))}. Retrain "
                       "with this version.")
    return meta


def read_run(path: str | Path) -> tuple[RunRecord, dict[str, torch.Tensor]]:
    """The record and the weights of a run folder, checked against each other.

    Raises:
        RunError: if files are missing, damaged, or from an incompatible version.
    """
    folder = Path(path)
    meta = _read_meta(folder)
    data = (folder / WEIGHTS).read_bytes()
    expected = meta.get("weights", {}).get("sha256")
    if expected and sha256(data) != expected:
        raise RunError(f"{folder / WEIGHTS} does not match the SHA-256 in model.json: the file "
                       "is damaged or was replaced. Restore it or retrain.")
    try:
        record = RunRecord.from_dict(meta)
        weights = load_safetensors(data)
    except (SafetensorError, KeyError, TypeError, ValueError) as error:
        raise RunError(f"{folder} cannot be loaded ({type(error).__name__}: {error}).") from None
    return record, weights
