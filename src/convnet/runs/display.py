"""How a run, its predictions and its evaluations show in a notebook (their
``_repr_html_``): tables, probability bars and pictures embedded in plain HTML
(`convnet.display`).

The objects are taken as they come (duck-typed), so that `Run`, `Prediction` and
`Evaluation` can each import this module on first display without a circle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from convnet import display, plots
from convnet.data.preprocess import ImageError, thumbnail_png
from convnet.errors import RunError

MOST_ROWS = 30  # per-class rows shown; ImageNet's 1,000 classes would bury the rest
MOST_DRAWN = 40  # classes above which a confusion matrix is too dense to read as a picture
THUMBNAIL = 128  # px, the longer side of a prediction's image


def thumbnail(path: str | Path) -> bytes | None:
    """A file's image, at most THUMBNAIL px on its longer side, as PNG; None where the file
    is not an image this machine can read (the prediction then shows without it)."""
    try:
        return thumbnail_png(Path(path), THUMBNAIL, enlarge=True)
    except ImageError:
        return None


def _verdict(prediction: Any) -> str:
    lines = []
    if prediction.unknown:
        lines.append("<div style=\"color: #a00; font-weight: bold\">unknown: unlike the "
                     "images this model was trained on (these are only what it looks like)"
                     "</div>")
    if prediction.set is not None:
        members = ", ".join(prediction.set) or "none"
        lines.append(f"<div>{prediction.coverage:.0%} set: {display.escape(members)}</div>")
    return "".join(lines)


def prediction_html(prediction: Any, k: int = 5) -> str:
    """One prediction: its image (where the file can be read) beside its top ``k``
    probabilities as bars, and the verdict "unknown" or the prediction set where asked."""
    name = Path(prediction.path).name or prediction.path
    if prediction.error:
        return display.block("prediction", name,
                             f"<div style=\"color: #a00\">{display.escape(prediction.error)}"
                             "</div>")
    png = prediction.image or thumbnail(prediction.path)
    picture = "" if png is None else f"<div>{display.image(png, name)}</div>"
    answer = (f"<div style=\"max-width: 340px\">{display.bars(prediction.top(k))}"
              f"{_verdict(prediction)}</div>")
    return display.block("prediction", name, "<div style=\"display: flex; gap: 12px; "
                         f"align-items: flex-start\">{picture}{answer}</div>")


def predictions_html(predictions: list[Any], k: int = 3) -> str:
    """Several predictions side by side, wrapping."""
    cells = "".join(f"<div style=\"display: inline-block; vertical-align: top; margin: "
                    f"0 12px 8px 0\">{prediction_html(p, k)}</div>" for p in predictions)
    return display.block("predictions", f"{len(predictions)} predictions", cells)


def _honesty_table(honesty: dict[str, Any]) -> str:
    rows = [(name, f"{honesty['before'][key]:.4f}", f"{honesty['after'][key]:.4f}")
            for key, name in (("ece", "expected calibration error"), ("nll", "log loss"),
                              ("brier", "Brier score"))]
    sets = [(f"{float(level):.0%} prediction sets", f"covered {found['coverage']:.2%}",
             f"mean size {found['mean_size']:.2f}")
            for level, found in honesty.get("sets", {}).items()]
    return display.table(("how honest", "before calibration", "after"), rows + sets,
                         [False, True, True])


def evaluation_html(evaluation: Any, title: str = "evaluation") -> str:
    """Accuracy and log loss, how honest the probabilities are, the per-class table and
    the confusion matrix."""
    parts = [display.facts([("images", f"{evaluation.count:,}"),
                            ("accuracy", f"{evaluation.accuracy:.2%}"),
                            ("balanced accuracy", f"{evaluation.balanced_accuracy:.2%}"),
                            ("log loss", f"{evaluation.loss:.4f}")])]
    if evaluation.honesty:
        parts.append(_honesty_table(evaluation.honesty))
    rows = [(name, f"{float(p):.3f}", f"{float(r):.3f}", f"{float(f):.3f}", int(s))
            for name, p, r, f, s in zip(evaluation.classes, evaluation.precision,
                                        evaluation.recall, evaluation.f1, evaluation.support)
            if int(s) > 0]
    parts.append(display.table(("class", "precision", "recall", "F1", "images"),
                               rows[:MOST_ROWS], [False, True, True, True, True]))
    if len(rows) > MOST_ROWS:
        parts.append(f"<div>… and {len(rows) - MOST_ROWS:,} more classes</div>")
    if len(evaluation.classes) <= MOST_DRAWN:
        png = display.drawn(lambda target: plots.confusion(
            evaluation.confusion, list(evaluation.classes), target, "confusion"))
        parts.append(f"<div>{display.picture(png, 'confusion matrix')}</div>")
    return display.block("evaluation", title, *parts)


def _scores(metrics: Any) -> list[tuple[str, str]]:
    test = metrics.test or {}
    found = [("best epoch", str(metrics.best_epoch) if metrics.best_epoch else
              "0 (the new head alone)")]
    if metrics.val_acc is not None:
        found.append(("validation accuracy", f"{metrics.val_acc:.2%}"))
    if "accuracy" in test:
        found.append(("test accuracy", f"{test['accuracy']:.2%}"))
    if test.get("loss") is not None:
        found.append(("test log loss", f"{test['loss']:.4f}"))
    calibration = test.get("calibration")
    if calibration:
        found.append(("test calibration error", f"{calibration['before']['ece']:.2%} → "
                      f"{calibration['after']['ece']:.2%} after calibration"))
    return found


def run_html(run: Any, test: Any = None) -> str:
    """A run: what it is, its scores, its training curves and its confusion matrix (from
    ``test``, an evaluation in hand, else as training saved it)."""
    record, folder = run.record, run.path
    classes = ", ".join(record.classes[:10]) + ("…" if len(record.classes) > 10 else "")
    parts = [display.facts([
        ("network", f"{record.arch} ({record.params:,} parameters)"),
        ("input", "×".join(map(str, record.input_shape))),
        ("classes", f"{len(record.classes)}: {classes}"),
        ("data", record.data.name), *([] if run.builtin else _scores(record.metrics))])]
    if folder is not None:
        parts.append(_curves(Path(folder)))
    if test is not None:
        parts.append(evaluation_html(test, "test split"))
    else:
        parts.append(_saved_confusion(record, folder))
    title = "built-in run " + record.data.name if folder is None else f"run {folder}"
    return display.block("run", title, *parts)


def _saved_confusion(record: Any, folder: str | Path | None) -> str:
    """The test split's confusion matrix as training saved it in model.json (runs written
    before it was kept there: the report's picture, where one was drawn)."""
    counts = (record.metrics.test or {}).get("confusion")
    if counts is not None and len(record.classes) <= MOST_DRAWN:
        import torch

        png = display.drawn(lambda target: plots.confusion(
            torch.tensor(counts), list(record.classes), target, "test split"))
        return f"<div>{display.picture(png, 'confusion matrix')}</div>"
    if folder is not None and (Path(folder) / "confusion.png").is_file():
        return display.image((Path(folder) / "confusion.png").read_bytes(), "confusion matrix")
    return ""


def _curves(folder: Path) -> str:
    from convnet.runs.format import read_metrics

    try:
        rows = read_metrics(folder)
    except RunError:
        return ""
    if not rows:
        return ""
    png = display.drawn(lambda target: plots.curves(rows, target))
    return f"<div>{display.picture(png, 'training curves')}</div>"
