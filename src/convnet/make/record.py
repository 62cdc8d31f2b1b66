"""What a run records: the start record written with its folder and every checkpoint, and
the `RunRecord` of `model.json` once it is trained."""

from __future__ import annotations

from dataclasses import replace

import torch

from convnet import data as datasets
from convnet.data.dataset import Dataset
from convnet.data.preprocess import Preprocess
from convnet.errors import TrainingError
from convnet.runs.calibration import NONE, Calibration
from convnet.runs.evaluate import Evaluation
from convnet.runs.format import DataInfo, Metrics, RunRecord
from convnet.training.config import TrainConfig
from convnet.training.distributed import world
from convnet.training.setup import Prepared


def resolved_config(run: Prepared, config: TrainConfig) -> TrainConfig:
    """The config as used: no ``auto`` left, a folder as a path that works from anywhere."""
    return replace(config, arch=run.arch, lr=config.peak_lr,
                   data=datasets.portable(config.data))


def start_record(run: Prepared, dataset: Dataset, config: TrainConfig,
                 plan: dict | None) -> dict:
    """What a run is started from, as written with its folder and with every checkpoint:
    the resolved config, the data's fingerprint and the plan record."""
    return {"config": resolved_config(run, config).to_dict(),
            "fingerprint": dataset.fingerprint(), "data": dataset.name, "arch": run.arch,
            "plan": plan, "processes": world().size}


def run_record(run: Prepared, dataset: Dataset, config: TrainConfig, test: Evaluation | None,
               weights_sha: str, stopped_early: int | None,
               calibration: Calibration = NONE) -> RunRecord:
    """``model.json``'s content for a trained run."""
    best, report, network = run.state.best, dataset.report, run.network
    prep = dataset.preprocess or Preprocess(*dataset.input_shape, config.resize)
    return RunRecord(
        spec=network.spec, arch=run.arch, classes=list(dataset.classes),
        input_shape=network.input_shape, preprocess=prep, normalization=run.normalization,
        config=resolved_config(run, config), augment=run.ops, balance=run.balancing,
        tta="flip" if run.flip_tta else "none", speed=run.speed(),
        data=DataInfo(dataset.name, dataset.source, dataset.fingerprint(),
                      len(run.train_split), len(run.val_split or []), len(dataset.test or []),
                      [] if report is None else
                      [{"path": p.path, "reason": p.reason} for p in report.problems]),
        validation=replace(run.validation, taught=True)
        if "refit" in (run.head_phase or {}) else run.validation, params=network.num_params,
        # no epoch yet (the model so far, `convnet.make.early`): none kept
        metrics=Metrics(best.epoch if best else 0, best and best.val_acc,
                        best and best.val_loss, None if test is None else {
            "accuracy": test.accuracy, "loss": test.loss, "macro": test.macro,
            "balanced_accuracy": test.balanced_accuracy,
            # rows: true class; kept so that a loaded run can show it (its display)
            "confusion": test.confusion.tolist(),
            **({} if test.honesty is None else {"calibration": test.honesty})},
            stopped_early),
        weights_sha256=weights_sha, calibration=calibration)


def check_weights(network: torch.nn.Module) -> None:
    """A run is never saved with NaN or infinite weights (nothing could use it).

    Raises:
        TrainingError: naming the tensors that hold them.
    """
    bad = [name for name, tensor in network.state_dict().items()
           if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]
    if bad:
        raise TrainingError(f"The kept weights hold NaN or infinite values ({', '.join(bad)}); "
                            "the run was not saved. Try a smaller lr.")
