"""The process that trains one studio job: ``python -m convnet.studio.worker DIR ID``.

It trains into DIR/runs/ID (or resumes it, when the folder holds an interrupted run),
draws the report, and writes what it is doing to DIR/jobs/ID.progress.json as it goes.
Exit status: 0 finished, 143 stopped by SIGTERM at a checkpoint (cancel, or the studio
going down), 1 failed (the reason is the last line on stderr).
"""

from __future__ import annotations

import shutil
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from convnet.atomic import write_json
from convnet.errors import ConvnetError, Interrupted, RunError
from convnet.training.callbacks import Callback, EpochStats, TrainStart
from convnet.training.config import TrainConfig

EVERY = 0.3  # seconds between progress writes inside an epoch


class ProgressFile(Callback):
    """The job's progress as one JSON file, rewritten atomically."""

    def __init__(self, path: Path):
        self.path = path
        self.state: dict[str, Any] = {"epoch": 0, "epochs": None, "step": 0, "steps": None,
                                      "history": [], "notes": [], "plan": None}
        self.written = 0.0

    def _write(self, now: bool = True) -> None:
        if now or time.monotonic() - self.written > EVERY:
            write_json(self.path, self.state)
            self.written = time.monotonic()

    def on_plan(self, plan) -> None:
        self.state["plan"] = plan.headline()
        self._write()

    def on_notice(self, line: str) -> None:
        self.state["notes"].append(line)
        self._write()

    def on_train_start(self, info: TrainStart) -> None:
        self.state.update(epochs=info.epochs, steps=info.steps_per_epoch, spec=info.spec,
                          params=info.params, train_images=info.train_images,
                          val_images=info.val_images, test_images=info.test_images,
                          head_val_acc=info.head_val_acc)
        self._write()

    def on_epochs(self, total: int) -> None:
        self.state["epochs"] = total

    def on_epoch_start(self, epoch: int) -> None:
        self.state.update(epoch=epoch, step=0)
        self._write()

    def on_step(self, epoch: int, step: int, loss: float, accuracy: float,
                images_per_s: float) -> None:
        self.state.update(step=step, loss=loss, accuracy=accuracy, images_per_s=images_per_s)
        self._write(now=False)

    def on_epoch_end(self, stats: EpochStats) -> None:
        history = [row for row in self.state["history"] if row["epoch"] < stats.epoch]
        self.state["history"] = [*history, stats.row()]  # a resumed epoch replaces its row
        self._write()


def work(root: Path, id: str) -> int:
    """Train (or resume) job ``id`` of the workspace ``root``; the exit status."""
    from convnet.explain.report import report
    from convnet.make import train
    from convnet.runs.format import read_metrics
    from convnet.studio.workspace import Workspace

    space = Workspace(root)
    job = space.job(id)
    out = space.run_dir(id)
    progress = ProgressFile(root / "jobs" / f"{id}.progress.json")
    if (out / "model.json").is_file():
        return 0  # finished before the studio heard of it
    if out.is_dir() and any(out.iterdir()):
        with suppress(RunError):  # the epochs before the interruption, for the curves
            progress.state["history"] = [{**row, "epoch": int(row["epoch"])}
                                         for row in read_metrics(out)]
        progress.state["notes"].append(
            f"resumed from its checkpoint after {len(progress.state['history'])} epoch(s)")
        result = train(resume=out, callbacks=[progress], early=space.early_dir(id))
    else:
        config = TrainConfig.from_dict({**job.options,
                                        "data": str(space.dataset_dir(job.dataset))})
        result = train(config, out=out, callbacks=[progress], early=space.early_dir(id))
    shutil.rmtree(space.early_dir(id), ignore_errors=True)  # the run answers from now on
    try:
        report(out, known=result.scored)
    except ConvnetError as error:  # the run is saved; its pictures are a bonus
        print(f"note: no report drawn ({error})", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    from convnet.training import compiler_import

    root, id = (argv or sys.argv[1:])[:2]
    compiler_import.defer()  # a job's own process, as the train command's: see there
    try:
        return work(Path(root), id)
    except Interrupted:
        return 143
    except (ConvnetError, KeyError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
