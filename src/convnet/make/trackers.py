"""Logging a run to the tools engineers already watch: TensorBoard and MLflow (the extras
of those names), each a callback of the primary process, made from ``config.log``.

- TensorBoard (`torch.utils.tensorboard`): the per-epoch scalars, the network graph, and
  at the end the confusion matrix and a sheet of test predictions as images; in
  ``RUN/tensorboard`` (or ``log_dir``), so a resumed run appends to the same logdir.
- MLflow: the scalars per epoch, at the end the resolved config as params, the test
  scores, the run folder as artifacts and the model (`convnet.make.mlflow_model`, loaded
  from code, not from a pickle). The MLflow run id is kept in ``RUN/mlflow.json``, so a
  resumed run logs to the same MLflow run. The tracking URI is MLflow's own setting
  (``MLFLOW_TRACKING_URI``, else ``./mlruns``).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from convnet import extras
from convnet.atomic import write_json
from convnet.errors import ConvnetError
from convnet.runs.format import read_metrics
from convnet.training.callbacks import Callback, EpochStats, TrainStart
from convnet.training.config import TrainConfig

MODULES = {"tensorboard": "tensorboard", "mlflow": "mlflow"}
SHOWN = 16  # test images in the predictions sheet
MLFLOW_FILE = "mlflow.json"
TRACKED = "trackers.json"
MODEL_CODE = Path(__file__).with_name("mlflow_model.py")  # logged as code, not pickled


def check(config: TrainConfig) -> None:
    """Before anything runs: each logger's library is installed.

    Raises:
        ConvnetError: naming the extra to install.
    """
    for name in config.loggers:
        extras.require(name, f"log={name!r} needs the {name} package", (MODULES[name],))
    if "mlflow" in config.loggers:
        _check_store()


def _check_store() -> None:
    """The MLflow tracking store answers (or a one-line error now, before training)."""
    import mlflow

    try:
        mlflow.tracking.MlflowClient().search_experiments(max_results=1)
    except Exception as error:  # noqa: BLE001 - any store failure, said in one line
        first = str(error).split(". ")[0]
        raise ConvnetError(f"log='mlflow': the MLflow store at {mlflow.get_tracking_uri()!r} "
                           f"does not answer ({type(error).__name__}: {first}). Set "
                           "MLFLOW_TRACKING_URI to one that works (for a file: store, also "
                           "MLFLOW_ALLOW_FILE_STORE=true).") from None


def trackers(config: TrainConfig) -> list[Callback]:
    return [{"tensorboard": TensorBoard, "mlflow": MLflow}[name](config)
            for name in config.loggers]


def _scalars(row: dict) -> dict[str, float]:
    """One metrics.csv row as the scalars logged."""
    found = {"loss/train": row["train_loss"], "accuracy/train": row["train_acc"],
             "loss/val": row["val_loss"], "accuracy/val": row["val_acc"], "lr": row["lr"],
             "images_per_s": row["images_per_s"]}
    return {name: float(value) for name, value in found.items() if value is not None}


class _Tracker(Callback):
    """Logs each epoch's row of the run's metrics.csv once. The rows come from the file
    (written just before, from the training state), so the epochs that a run killed
    between its checkpoint and its loggers never logged are logged when it resumes; the
    last epoch logged is kept in ``RUN/trackers.json``."""

    name = ""

    def __init__(self, config: TrainConfig):
        self.config, self.folder = config, None

    def on_train_start(self, info: TrainStart) -> None:
        self.folder = Path(info.out)
        self.start()

    def _done(self) -> dict[str, int]:
        try:
            return json.loads((self.folder / TRACKED).read_text())
        except (OSError, ValueError):
            return {}

    def on_epoch_end(self, stats: EpochStats) -> None:
        done = self._done()
        rows = [row for row in read_metrics(self.folder)
                if done.get(self.name, 0) < row["epoch"] <= stats.epoch]
        for row in rows:
            self.log(int(row["epoch"]), _scalars(row))
        if rows:
            write_json(self.folder / TRACKED, {**done, self.name: int(rows[-1]["epoch"])})

    def start(self) -> None: ...

    def log(self, epoch: int, scalars: dict[str, float]) -> None: ...


def _confusion_image(confusion: torch.Tensor) -> np.ndarray:
    """(K, K) counts -> (3, S, S) uint8: each row's rates as a heat map, 16 px a cell."""
    rates = confusion.float() / confusion.sum(1, keepdim=True).clamp_min(1)  # (K, K)
    cells = (255 * (1 - rates)).to(torch.uint8).repeat_interleave(16, 0) \
        .repeat_interleave(16, 1)  # (S, S)
    return np.stack([cells.numpy(), cells.numpy(), np.full_like(cells.numpy(), 255)])


def _predictions_image(result) -> np.ndarray | None:
    """A contact sheet of some test (or validation) images, true -> predicted."""
    from convnet.data.sheet import contact_sheet

    try:
        split, _ = result.run.labelled()
    except ConvnetError:
        return None
    images, labels = split.images[:SHOWN], split.labels[:SHOWN]
    probabilities = result.run.predict(images)  # (n, classes)
    classes = result.run.classes
    captions = [[f"true {classes[int(y)]}", f"-> {classes[int(p.argmax())]} {p.max():.2f}"]
                for y, p in zip(labels, probabilities)]
    with tempfile.TemporaryDirectory() as folder:
        path = contact_sheet(images, captions, Path(folder) / "sheet.png")
        return np.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("RGB")) \
            .transpose(2, 0, 1)  # (3, H, W)


class TensorBoard(_Tracker):
    """Event files TensorBoard's own reader reads (`torch.utils.tensorboard`)."""

    name = "tensorboard"

    def start(self) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(self.config.log_dir or str(self.folder / "tensorboard"))

    def log(self, epoch: int, scalars: dict[str, float]) -> None:
        for name, value in scalars.items():
            self.writer.add_scalar(name, value, epoch)
        self.writer.flush()

    def on_train_end(self, result) -> None:
        network = result.run.network
        chw = tuple(network.chw)
        try:  # the graph is a bonus: a network that does not trace still logs the rest
            network.eval()
            self.writer.add_graph(network, torch.zeros(1, *chw))
        except Exception:  # noqa: BLE001
            pass
        if result.test is not None:
            self.writer.add_image("confusion (rows: true class)",
                                  _confusion_image(result.test.confusion), result.best_epoch)
        sheet = _predictions_image(result)
        if sheet is not None:
            self.writer.add_image("predictions", sheet, result.best_epoch)
        self.writer.close()


class MLflow(_Tracker):
    """An MLflow run: params, metrics per epoch, the run folder and the model."""

    name = "mlflow"

    def start(self) -> None:
        import mlflow

        kept = self.folder / MLFLOW_FILE
        if kept.is_file():  # a resumed run goes on in the same MLflow run
            mlflow.start_run(run_id=json.loads(kept.read_text())["run_id"])
            return
        active = mlflow.start_run(run_name=self.folder.name)
        write_json(kept, {"run_id": active.info.run_id})

    def log(self, epoch: int, scalars: dict[str, float]) -> None:
        import mlflow

        mlflow.log_metrics({name.replace("/", "_"): value for name, value in
                            scalars.items()}, step=epoch)

    def on_train_end(self, result) -> None:
        import mlflow

        # the config as resolved by the plan (params are set once: at the end)
        mlflow.log_params({k: "" if v is None else v for k, v in
                           result.run.record.config.to_dict().items()})
        if result.test is not None:
            mlflow.log_metrics({"test_accuracy": result.test.accuracy,
                                "test_loss": result.test.loss})
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        mlflow.log_artifacts(str(result.path), artifact_path="run")
        with warnings.catch_warnings():  # its advice on type hints: our input is a frame
            warnings.simplefilter("ignore")
            mlflow.pyfunc.log_model(name="model", python_model=str(MODEL_CODE),
                                    artifacts={"run": str(result.path)})
        mlflow.end_run()
