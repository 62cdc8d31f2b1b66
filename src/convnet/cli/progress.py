"""The live training display: a bar per epoch, then a closing table (rich)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from convnet.training.callbacks import Callback, EpochStats, TrainStart


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


@contextmanager
def scan_bar(console: Console, label: str = "decoding images"
             ) -> Iterator[Callable[[int, int], None]]:
    """A bar for decoding a folder dataset (or another pass over its images: ``label``);
    shown only once the first count arrives."""
    bar = Progress(TextColumn(label), BarColumn(bar_width=24),
                   TextColumn("{task.completed:,}/{task.total:,}"), TimeRemainingColumn(),
                   console=console, transient=True)
    task = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task("", total=total)
        bar.update(task, completed=done)

    try:
        yield update
    finally:
        if task is not None:  # a bar never shown leaves no blank line behind
            bar.stop()


class RichProgress(Callback):
    """Live bars on a terminal; elsewhere (a log file, CI) one plain line per epoch as it
    ends, since a live display there only appears when training is over."""

    def __init__(self, console: Console):
        self.console = console
        self.live = console.is_terminal
        self.progress: Progress | None = None
        self.task = None
        self.info: TrainStart | None = None
        self.scan = None

    def on_scan(self, done: int, total: int) -> None:
        if self.scan is None:
            self.scan_context = scan_bar(self.console)
            self.scan = self.scan_context.__enter__()
        self.scan(done, total)
        if done >= total:
            self.scan_context.__exit__(None, None, None)

    def on_data_report(self, report) -> None:
        from convnet.cli.render import data_report

        # every skipped file, by path; the first copies (check-data lists them all)
        data_report(self.console, report, limit=None, copies=5)

    def on_plan(self, plan) -> None:
        from convnet.cli.render import plan as show_plan

        show_plan(self.console, plan)

    def on_train_start(self, info: TrainStart) -> None:
        self.info = info
        self.console.print(
            f"[bold]Training[/] {info.spec} ({info.params:,} parameters) on {info.device}: "
            f"{info.train_images:,} train / {info.val_images:,} val / "
            f"{info.test_images:,} test images", soft_wrap=True)
        if not self.live:
            return
        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"), BarColumn(bar_width=16),
            TextColumn("loss {task.fields[loss]:.4f} acc {task.fields[acc]:.2%} "
                       "{task.fields[rate]:,.0f} img/s"),
            TimeRemainingColumn(), TextColumn("{task.fields[val]}"),
            console=self.console)
        self.progress.start()

    def on_epochs(self, total: int) -> None:
        assert self.info is not None
        self.info = replace(self.info, epochs=total)  # the next bars count to the new total

    def on_epoch_start(self, epoch: int) -> None:
        if not self.live:
            return
        assert self.progress is not None and self.info is not None
        self.task = self.progress.add_task(
            "", total=self.info.steps_per_epoch, epoch=f"{epoch}/{self.info.epochs}",
            loss=0.0, acc=0.0, rate=0.0, val="")

    def on_step(self, epoch: int, step: int, loss: float, accuracy: float,
                images_per_s: float) -> None:
        if not self.live:
            return
        self.progress.update(self.task, completed=step, loss=loss, acc=accuracy,
                             rate=images_per_s)

    def on_epoch_end(self, stats: EpochStats) -> None:
        if self.live:
            self.progress.update(self.task, val=f"val {_percent(stats.val_acc)}")
            return
        assert self.info is not None
        self.console.print(
            f"epoch {stats.epoch}/{self.info.epochs}: loss {stats.train_loss:.4f} acc "
            f"{_percent(stats.train_acc)} val {_percent(stats.val_acc)} "
            f"{stats.images_per_s:,.0f} img/s {stats.seconds:.1f}s", soft_wrap=True)

    def on_notice(self, line: str) -> None:
        self.console.print(f"[yellow]note:[/] {line}", soft_wrap=True)

    def on_train_end(self, result) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.console.print(_history_table(result))
        test = result.test
        score = ("no test split" if test is None else
                 f"test accuracy [bold]{test.accuracy:.2%}[/] (macro F1 {test.macro['f1']:.4f}, "
                 f"{test.count:,} images)")
        if result.stopped_early is not None:
            since = f"epoch {result.best_epoch}" if result.best_epoch else \
                "the new head alone (epoch 0)"
            self.console.print(f"stopped early after epoch {result.stopped_early}: validation "
                               f"accuracy had not improved since {since} (--patience)",
                               soft_wrap=True)
        calibration = result.run.record.calibration
        if calibration.method == "temperature" and test is not None and test.honesty:
            after, before = test.honesty["after"], test.honesty["before"]
            self.console.print(f"probabilities calibrated on {calibration.fitted_on:,} "
                               f"validation images (temperature "
                               f"{calibration.temperature:.3g}): test expected calibration "
                               f"error {before['ece']:.2%} -> {after['ece']:.2%}",
                               soft_wrap=True)
        kept = f"best epoch {result.best_epoch}" if result.best_epoch else \
            "the new head alone (no epochs)" if not result.history else \
            "the new head alone (epoch 0: no epoch beat it on the validation images)"
        self.console.print(f"★ {kept} kept; {score}; "
                           f"{result.seconds:.1f}s. Run saved to [bold]{result.path}[/]",
                           soft_wrap=True)


def _history_table(result) -> Table:
    table = Table(title="Training", title_justify="left")
    for name in ("epoch", "train loss", "train acc", "val loss", "val acc", "lr", "img/s",
                 "time"):
        table.add_column(name, justify="right")
    for s in result.history:
        mark = " ★" if s.epoch == result.best_epoch else ""
        table.add_row(f"{s.epoch}{mark}", f"{s.train_loss:.4f}", _percent(s.train_acc),
                      "—" if s.val_loss is None else f"{s.val_loss:.4f}",
                      _percent(s.val_acc), f"{s.lr:.2e}", f"{s.images_per_s:,.0f}",
                      f"{s.seconds:.1f}s")
    return table


class FoldBar(Callback):
    """One bar over every fold's epochs (`convnet suspects`); shown once they start."""

    def __init__(self, console: Console):
        self.bar = Progress(TextColumn("training fold models"), BarColumn(bar_width=24),
                            TextColumn("{task.completed}/{task.total} epochs"),
                            TimeRemainingColumn(), console=console, transient=True)
        self.task = None

    def __enter__(self) -> FoldBar:
        return self

    def __exit__(self, *exc) -> None:
        if self.task is not None:
            self.bar.stop()

    def on_epochs(self, total: int) -> None:
        if self.task is None:
            self.bar.start()
            self.task = self.bar.add_task("", total=total)

    def on_epoch_end(self, stats: EpochStats) -> None:
        if self.task is not None:
            self.bar.advance(self.task)
