"""Tables and lines the CLI prints: the library returns data, this turns it into text."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # annotations only: the command line imports torch when a command runs
    from convnet.network.summary import Summary
    from convnet.runs.evaluate import Evaluation
    from convnet.runs.predictor import Prediction


def summary(console: Console, s: Summary) -> None:
    height, width, channels = s.input_shape
    table = Table(title=f"{s.spec}  (input {height}×{width}×{channels})", title_justify="left")
    for name in ("#", "layer", "output H×W×D", "parameters", "multiply-adds",
                 "receptive field"):
        table.add_column(name, justify="left" if name == "layer" else "right")
    for row in s.table_rows():
        table.add_row(*row)
    table.add_section()
    from convnet.network.shapes import format_shape

    table.add_row("", "total", format_shape(s.rows[-1].out_shape), f"{s.params:,}",
                  f"{s.macs:,}", "")
    console.print(table)
    console.print(s.comparison())


SHOWN_CLASSES = 20  # past this many classes, the tables show only those in play


def honesty_line(scores: dict[str, dict[str, float]]) -> str:
    """How honest the probabilities are, before and after the run's calibration."""
    before, after = scores["before"], scores["after"]
    sets = "".join(f"; {float(level):.0%} sets hold the true class for {found['coverage']:.1%}"
                   f" (mean size {found['mean_size']:.2f})"
                   for level, found in scores.get("sets", {}).items())
    return _calibration_line(before, after) + sets


def _calibration_line(before: dict[str, float], after: dict[str, float]) -> str:
    if before == after:
        return (f"probabilities: expected calibration error {after['ece']:.2%} (15 bins), "
                f"log loss {after['nll']:.4f}, Brier {after['brier']:.4f} (not calibrated)")
    return (f"probabilities, calibrated: expected calibration error {before['ece']:.2%} -> "
            f"[bold]{after['ece']:.2%}[/] (15 bins), log loss {before['nll']:.4f} -> "
            f"{after['nll']:.4f}, Brier {before['brier']:.4f} -> {after['brier']:.4f}")


def evaluation(console: Console, result: Evaluation, title: str) -> None:
    macro = result.macro
    console.print(f"[bold]{title}[/]: accuracy [bold]{result.accuracy:.2%}[/] on "
                  f"{result.count:,} images, log loss {result.loss:.4f}, macro precision "
                  f"{macro['precision']:.4f} recall {macro['recall']:.4f} F1 {macro['f1']:.4f}, "
                  f"balanced accuracy {result.balanced_accuracy:.2%}", soft_wrap=True)
    if result.honesty is not None:
        console.print(honesty_line(result.honesty), soft_wrap=True)
    rows, columns = _in_play(result)
    table = Table(title="Per class", title_justify="left")
    for name in ("class", "precision", "recall", "F1", "images"):
        table.add_column(name, justify="right")
    for i in rows:
        table.add_row(result.classes[i], f"{result.precision[i]:.4f}",
                      f"{result.recall[i]:.4f}", f"{result.f1[i]:.4f}",
                      f"{int(result.support[i]):,}")
    console.print(table)
    hidden = len(result.classes) - len(columns)
    left_out = f"; {hidden:,} classes never true nor predicted left out" if hidden else ""
    matrix = Table(title=f"Confusion matrix (rows: true class, columns: predicted{left_out})",
                   title_justify="left")
    matrix.add_column("true \\ pred", justify="right")
    for j in columns:
        matrix.add_column(result.classes[j], justify="right")
    confusion = result.confusion.tolist()
    for i in rows:
        matrix.add_row(result.classes[i], *(f"[bold]{confusion[i][j]}[/]" if i == j else
                                            str(confusion[i][j]) if confusion[i][j] else "·"
                                            for j in columns))
    console.print(matrix)


def _in_play(result: Evaluation) -> tuple[list[int], list[int]]:
    """Classes for the rows (true ones) and columns (true or predicted); every class when
    there are few, so a small run's tables keep their shape."""
    everything = list(range(len(result.classes)))
    if len(everything) <= SHOWN_CLASSES:
        return everything, everything
    true = result.support > 0
    predicted = result.confusion.sum(0) > 0
    return ([i for i in everything if true[i]],
            [i for i in everything if true[i] or predicted[i]])


def predictions(console: Console, results: list[Prediction], top: int, style: str,
                classes: list[str]) -> None:
    if style == "json":
        for r in results:
            console.print(json.dumps(r.to_dict(top)), soft_wrap=True)
    elif style == "csv":
        from convnet.runs.sorting import csv_text

        sys.stdout.write(csv_text(results, classes))
    else:
        for r in results:
            console.print(f"{r.path}: {r.text(top)}", soft_wrap=True, markup=False)


def sorted_into(console: Console, done, folder) -> None:
    counts = ", ".join(f"{count:,} {name}/" for name, count in sorted(done.counts.items()))
    skipped = f"; {done.skipped:,} unreadable (listed in the CSV)" if done.skipped else ""
    console.print(f"sorted into {folder}/: {counts or 'nothing'}{skipped}; wrote {done.csv}",
                  soft_wrap=True, markup=False)


def catalogue(console: Console, entries: dict[str, str]) -> None:
    table = Table(title="Built-in datasets (--data NAME[:key=value,...], or --data PATH)",
                  title_justify="left")
    table.add_column("name")
    table.add_column("what it is")
    for name, about in entries.items():
        table.add_row(name, about)
    console.print(table)
    console.print("--data PATH: a folder with one sub-folder of images per class (optionally "
                  "under train/ val/ test/); a CSV of path,label[,split] rows; or a folder "
                  "with the official MNIST IDX files or the CIFAR-10 binary release. Check "
                  "one first with `convnet check-data PATH`.")


def printable(text: str) -> str:
    """File names that are not valid UTF-8 shown with replacement marks, never a crash."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _relative(path: str, root: str) -> str:
    inside = path.startswith(root.rstrip("/") + "/")
    return path[len(root.rstrip("/")) + 1 :] if inside else path


def data_report(console: Console, report, limit: int | None = 50,
                copies: int | None = -1) -> None:
    """Counts per class and split, every skipped file by path and reason, the groups of
    copies that leak (the first ``copies``; -1: as many as ``limit``), the warnings."""
    prep = report.preprocess
    state = "from the cache" if report.cached else "decoded"
    console.print(f"[bold]{printable(report.root)}[/]: {len(report.classes)} classes, images "
                  f"{prep.height}×{prep.width}×{prep.channels} ({prep.resize}), {state} in "
                  f"{report.seconds:.1f}s")
    splits = [name for name in ("train", "val", "test") if name in report.counts]
    table = Table(title="Images per class", title_justify="left")
    table.add_column("class")
    for name in splits:
        table.add_column(name, justify="right")
    for index, name in enumerate(report.classes):
        table.add_row(printable(name), *(f"{report.counts[s][index]:,}" for s in splits))
    console.print(table)
    if report.problems:
        bad = Table(title=f"Skipped: {len(report.problems)} file(s)", title_justify="left")
        bad.add_column(f"path (under {printable(report.root)})", overflow="fold")
        bad.add_column("reason", overflow="fold")
        shown = report.problems if limit is None else report.problems[:limit]
        for problem in shown:
            bad.add_row(printable(_relative(problem.path, report.root)), problem.reason,
                        style="red")
        console.print(bad)
        if len(shown) < len(report.problems):
            console.print(f"... and {len(report.problems) - len(shown)} more "
                          "(all of them: convnet check-data PATH --all, or data_report.json)")
    _copies(console, report, limit if copies == -1 else copies)
    for note in report.warnings():
        console.print(f"[yellow]warning:[/] {printable(note)}", markup=True, soft_wrap=True)
    if not report.problems and not report.warnings():
        console.print("[green]No problems found.[/]")


def _copies(console: Console, report, limit: int | None) -> None:
    """The groups of copies that span splits or classes, by path."""
    if not report.leaks:
        return
    table = Table(title=f"Copies across splits or classes: {len(report.leaks)} group(s)",
                  title_justify="left")
    table.add_column("kind")
    table.add_column("similarity", justify="right")
    table.add_column(f"paths (under {printable(report.root)}): split, class", overflow="fold")
    shown = report.leaks if limit is None else report.leaks[:limit]
    for group in shown:
        paths = "\n".join(f"{printable(_relative(path, report.root))}: {split}, {label}"
                          for path, split, label in zip(group.paths, group.splits,
                                                        group.labels))
        table.add_row(group.kind, f"{group.similarity:.3f}", paths)
    console.print(table)
    if len(shown) < len(report.leaks):
        console.print(f"... and {len(report.leaks) - len(shown)} more (all of them: "
                      f"convnet check-data {printable(report.root)} --all, or --json)")


def dataset_overview(dataset) -> dict:
    """Classes, shape and images per class and split of a dataset without a file scan."""
    height, width, channels = dataset.input_shape
    splits = {name: split for name, split in
              (("train", dataset.train), ("val", dataset.val), ("test", dataset.test))
              if split is not None}
    counts = {name: split.labels.bincount(minlength=len(dataset.classes)).tolist()
              for name, split in splits.items()}
    return {"name": dataset.name, "source": dataset.source, "classes": dataset.classes,
            "input_shape": [height, width, channels], "counts": counts, "problems": []}


def overview(console: Console, facts: dict) -> None:
    height, width, channels = facts["input_shape"]
    console.print(f"[bold]{printable(facts['name'])}[/] ({printable(facts['source'])}): "
                  f"{len(facts['classes'])} classes, images {height}×{width}×{channels}",
                  soft_wrap=True)
    table = Table(title="Images per class", title_justify="left")
    table.add_column("class")
    for name in facts["counts"]:
        table.add_column(name, justify="right")
    for index, name in enumerate(facts["classes"]):
        table.add_row(printable(name), *(f"{facts['counts'][s][index]:,}"
                                         for s in facts["counts"]))
    console.print(table)
    console.print("[green]No problems found[/] (read from its official files, which are "
                  "checked whole, not file by file).")


def _matrix(values) -> str:
    return "\n".join(" ".join(f"{float(v):7.3f}" for v in row) for row in values)


def arithmetic(console: Console, result, channels_shown: int = 3) -> None:
    """The dot product behind one feature-map value, channel by channel, then what the
    activation and pooling made of it."""
    depth, kernel = result.patch.shape[0], result.patch.shape[1]
    console.print(f"[bold]layer {result.layer}[/], filter {result.filter}, output position "
                  f"(row {result.y}, column {result.x}): a {kernel}×{kernel}×{depth} filter "
                  f"over the {kernel}×{kernel}×{depth} patch under it")
    sums = result.products.double().sum(dim=(1, 2))  # (C,) one partial sum per channel
    for channel in range(min(depth, channels_shown)):
        table = Table(title=f"input channel {channel}", title_justify="left", show_lines=True)
        table.add_column("")
        table.add_column("values", justify="right")
        table.add_row("patch", _matrix(result.patch[channel]))
        table.add_row("× weights", _matrix(result.weights[channel]))
        table.add_row("= products", _matrix(result.products[channel]))
        console.print(table)
        console.print(f"  sum over channel {channel}: {float(sums[channel]):.4f}")
    if depth > channels_shown:
        rest = float(sums[channels_shown:].sum())
        console.print(f"  sum over the other {depth - channels_shown} channel(s): {rest:.4f}")
    total = float(sums.sum())
    console.print(f"sum of all products {total:.4f} + bias {result.bias:.4f} = "
                  f"[bold]{result.value:.4f}[/]; the layer's real output there: "
                  f"{result.actual:.4f}")
    for token, text in result.after:
        console.print(f"then {token}: {text}")


def run_list(console: Console, runs) -> None:
    """One row per run: folder, state, data, arch, epochs, accuracy."""
    if not runs:
        console.print("No runs here yet; `convnet train` makes one.")
        return
    table = Table(title="Runs", title_justify="left")
    for name in ("run", "state", "data", "arch", "epochs", "accuracy"):
        table.add_column(name, justify="right" if name in ("epochs", "accuracy") else "left",
                         no_wrap=True)
    for run in runs:
        accuracy = "—" if run.accuracy is None else f"{run.accuracy:.2%} {run.scored_on}"
        table.add_row(printable(str(run.path)), run.state, printable(run.data), run.arch,
                      str(run.epochs), accuracy, style=None if run.finished else "yellow")
    width = console.width
    console.width = max(width, 120)  # a log file (80 columns) gets whole names
    try:
        console.print(table)
    finally:
        console.width = width


def plan(console: Console, planned) -> None:
    """The plan's one-line summary, then each choice and why (given ones marked)."""
    console.print(f"[bold]Plan[/]: {planned.headline()}", soft_wrap=True, markup=True,
                  highlight=False)
    table = Table(box=None, show_header=False, padding=(0, 2, 0, 2))
    for choice in planned.choices:
        table.add_row(choice.name.replace("_", "-"), printable(choice.value),
                      "[dim]given[/]" if choice.given else printable(choice.reason))
    console.print(table)


def suspects(console: Console, found, top: int) -> None:
    """The top suspects as a table, then how they were found."""
    shown = found.top(top)
    root = found.folder or ""
    if shown:
        under = f", paths under {printable(root)}" if root else ""
        table = Table(title=f"Likely mislabelled: the top {len(shown)} of "
                      f"{len(found.flagged):,} flagged{under}", title_justify="left")
        for name in ("#", "path", "given", "p(given)", "suggested", "p(suggested)"):
            table.add_column(name, justify="right" if name.startswith(("#", "p(")) else
                             "left", overflow="fold")
        for rank, row in enumerate(shown, start=1):
            path = _relative(row.path, root) if root else row.path
            table.add_row(str(rank), printable(path), row.given, f"{row.quality:.3f}",
                          row.suggested, f"{row.confidence:.3f}")
        console.print(table)
    console.print(f"{len(found.flagged):,} of {len(found.rows):,} training images flagged "
                  f"(cleanlab, confident learning) from {found.method}; the out-of-fold "
                  f"predictions agree with {found.agreement:.1%} of the labels; "
                  f"{found.seconds:.0f} s", soft_wrap=True)


def comparison(console: Console, found) -> None:
    """Runs as columns: the settings that differ, then the scores."""
    table = Table(title=f"{len(found.names)} runs", title_justify="left")
    table.add_column("")
    for name in found.names:
        table.add_column(printable(name), justify="right", overflow="fold")
    for name, values in found.settings.items():
        table.add_row(name, *("—" if v is None else printable(str(v)) for v in values))
    table.add_section()
    for name, values in found.scores.items():
        table.add_row(name, *(_score(v) for v in values))
    console.print(table)
    if not found.settings:
        console.print("the runs have the same settings", soft_wrap=True)


def _score(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and value <= 1.0:
        return f"{value:.4f}"
    return f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"


def _milliseconds(seconds: float) -> str:
    """``seconds`` in ms, to two decimals below 10 ms (a small network's batch: 0.47 ms)."""
    ms = seconds * 1000
    return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.2f} ms"


def int8(console: Console, done) -> None:
    """What `convnet export --int8` wrote, and how it compares with the float file."""
    from convnet.export.int8 import TIMED_BATCH

    r = done.report
    console.print(f"wrote {done.path} ({r.bytes_int8 / 1000:,.0f} KB; float "
                  f"{r.bytes_fp32 / 1000:,.0f} KB); on {r.test_images} images of {r.source}: "
                  f"accuracy {r.accuracy_fp32:.2%} -> {r.accuracy_int8:.2%}, top-1 agreement "
                  f"{r.agree:.1%}; a batch of {TIMED_BATCH}: {_milliseconds(r.seconds_fp32)} "
                  f"-> {_milliseconds(r.seconds_int8)} ({r.speedup:.2f}x)"
                  + ("; the first convolution, faster here in float, kept in float"
                     if r.float_convs else ""))
    if r.speedup < 1:  # small networks: converting to and from int8 costs more than it saves
        console.print(f"note: the int8 file is slower than the float one on this machine "
                      f"({r.speedup:.2f}x): ship the float file (convnet export "
                      f"{done.path.parent}) unless the size matters more", soft_wrap=True)
