"""`convnet report RUN`: the pictures of a training run and one self-contained HTML page.

Writes into the run folder: ``curves.png`` (loss and accuracy per epoch), ``confusion.png``
(counts and rates on the test split, or validation when there is no test split),
``wrong.png`` (the most confidently wrong validation images with their Grad-CAM),
``reliability.png`` (how often the answers are right against how sure they are, before and
after the run's calibration) and ``report.html`` (all of it, images embedded, plus
per-class scores, how honest the probabilities are, the model summary and the run's
configuration). The validation split is rebuilt exactly as training drew it
(by the rule saved in the run), so the gallery shows images the network never trained on;
where a head alone was refitted on them (``taught``), it shows the test images instead.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from convnet import plots
from convnet.atomic import write_atomic
from convnet.data.dataset import Split, Validation
from convnet.explain.sections import img as _img
from convnet.explain.sections import leaks_section, suspects_section
from convnet.explain.sections import table as _table
from convnet.network.shapes import format_shape
from convnet.network.summary import summarize
from convnet.runs.calibration import reliability
from convnet.runs.evaluate import Evaluation, Scored
from convnet.runs.format import read_metrics
from convnet.runs.run import Run, load

WRONG_SHOWN = 12


@dataclass
class RunReport:
    folder: Path
    files: list[Path]  # the PNGs
    html: Path
    evaluation: Evaluation | None  # None: the data has no validation or test images
    scored_on: str | None  # "test" or "validation"


def _splits(run: Run, data: str | None) -> tuple[Split | None, Split | None]:
    """(validation, test) of the run's data, the validation split drawn by the rule saved in
    the run (format-1 runs saved none: the rule is planned from their config, as then).
    None for the validation images a head alone was refitted on (``taught``): the saved
    network has seen them, so the gallery shows the test images' mistakes instead."""
    config = run.record.config
    dataset = run.own_data(data)
    rule = run.record.validation or Validation.for_run(dataset, config.val_split, config.seed)
    _, val = rule.draw(dataset)
    return None if rule.taught else val, dataset.test


def _wrong(run: Run, split: Split, logits: torch.Tensor | None = None
           ) -> list[tuple[torch.Tensor, torch.Tensor, str]]:
    """The most confidently wrong images of a split: (image, Grad-CAM, caption);
    ``logits``: the split's raw logits, when they are at hand."""
    probabilities = run.predictor.probabilities(split.images, logits)  # (N, classes)
    confidence, predicted = probabilities.max(1)
    wrong = torch.nonzero(predicted != split.labels).flatten()
    ranked = wrong[confidence[wrong].argsort(descending=True)][:WRONG_SHOWN]
    items = []
    for index in ranked.tolist():
        image, guess = split.images[index], int(predicted[index])
        caption = (f"true {run.classes[int(split.labels[index])]}\n"
                   f"said {run.classes[guess]} ({float(confidence[index]):.2f})")
        items.append((image, run.gradcam(image, guess), caption))
    return items


def report(path: str | Path, data: str | None = None,
           known: Mapping[str, Scored] | None = None) -> RunReport:
    """Write the run's pictures and ``report.html`` into its folder. ``known``: the
    run's raw logits on its "validation" and "test" splits where they are at hand (as
    `convnet.train` returns them), reused for the very same images instead of a pass.

    A run whose data has neither validation nor test images gets its curves and a page
    that says nothing could be scored; a run that got every image right gets a `wrong.png`
    that says so.

    Raises:
        RunError: if the folder is not a readable run.
        ConvnetError: if its data cannot be loaded again, or matplotlib is missing.
    """
    run = load(path)
    folder = Path(path)
    val, test = _splits(run, data)
    scored, scored_on = (test, "test") if test is not None else (val, "validation")
    rows = read_metrics(folder)  # none for the head alone: no curves to draw
    files = [plots.curves(rows, folder / "curves.png")] if rows else []
    # each split through the network once: the scores, the diagram and the gallery share it
    known = known or {}
    logits = None if scored is None else _logits(run, scored, known.get(scored_on))
    evaluation = None if scored is None else run.predictor.evaluate(scored, logits=logits)
    if evaluation is not None:
        files.append(plots.confusion(evaluation.confusion, run.classes,
                                     folder / "confusion.png", f"{scored_on} split"))
        gallery_split, gallery_name = (val, "validation") if val is not None else \
            (test, "test")
        files.append(_gallery(run, gallery_split, gallery_name, folder / "wrong.png",
                              logits if gallery_split is scored else
                              _logits(run, gallery_split, known.get(gallery_name))))
        files.append(_reliability(logits.cpu(), run, scored, scored_on,
                                  folder / "reliability.png"))
    page = folder / "report.html"
    write_atomic(page, _html(run, evaluation, scored_on, files).encode())
    return RunReport(folder, files, page, evaluation, scored_on if scored is not None else None)


def _logits(run: Run, split: Split, known: Scored | None) -> torch.Tensor:
    """The split's raw logits: ``known`` ones where they are of these very images."""
    found = None if known is None else known.logits_for(split.images)
    return run.predictor.logits(split.images) if found is None else found


def _gallery(run: Run, split: Split, name: str, path: Path,
             logits: torch.Tensor | None = None) -> Path:
    items = _wrong(run, split, logits)
    if not items:
        return plots.gallery([], path, f"No {name} image was misclassified: all "
                             f"{len(split):,} were right.")
    return plots.gallery(items, path, f"the {len(items)} most confidently wrong {name} "
                         "images, with Grad-CAM for the class the network said")


def _reliability(logits: torch.Tensor, run: Run, split: Split, name: str, path: Path) -> Path:
    """Reliability diagrams of the split (its raw ``logits``), before and after the run's
    calibration."""
    calibration = run.record.calibration
    panels = [("softmax as trained", reliability(logits, split.labels))]
    if calibration.method != "none":
        panels.append((f"calibrated (temperature {calibration.temperature:.3g})",
                       reliability(logits, split.labels, calibration)))
    return plots.reliability(panels, path, f"{name} split, {len(split):,} images")


def _honesty(run: Run, evaluation: Evaluation | None, scored_on: str) -> str:
    """The page's section on how honest the probabilities are."""
    if evaluation is None or evaluation.honesty is None:
        return ""
    calibration = run.record.calibration
    how = (f"Temperature {calibration.temperature:.3g}, fitted on "
           f"{calibration.fitted_on:,} validation images." if calibration.method != "none"
           else html.escape(calibration.note or "This run was written before calibration."))
    rows = [[when, f"{scores['ece']:.2%}", f"{scores['nll']:.4f}", f"{scores['brier']:.4f}"]
            for when, scores in (("softmax as trained", evaluation.honesty["before"]),
                                 ("as the run answers", evaluation.honesty["after"]))]
    return (f"<h2>Probabilities ({scored_on} split)</h2><p>{how}</p>"
            + _table(["", "expected calibration error (15 bins)", "log loss", "Brier"], rows))


def _kept(epoch: int) -> str:
    return f"best epoch {epoch}" if epoch else "the new head alone kept (epoch 0)"


def _scores(run: Run, evaluation: Evaluation | None, scored_on: str) -> tuple[str, str]:
    """(the headline, the per-class section) of the page."""
    record = run.record
    if evaluation is None:
        return (f"{html.escape(record.data.name)} has no validation or test images, so "
                f"nothing was scored; {_kept(record.metrics.best_epoch)}.", "")
    precision, recall, f1 = evaluation.precision, evaluation.recall, evaluation.f1
    per_class = [[name, f"{float(precision[i]):.3f}", f"{float(recall[i]):.3f}",
                  f"{float(f1[i]):.3f}", f"{int(evaluation.support[i]):,}"]
                 for i, name in enumerate(run.classes)]
    headline = (f"{html.escape(record.data.name)}: {scored_on} accuracy "
                f"<b>{evaluation.accuracy:.2%}</b> on {evaluation.count:,} images, macro F1 "
                f"{evaluation.macro['f1']:.4f}, balanced accuracy "
                f"{evaluation.balanced_accuracy:.2%}; {_kept(record.metrics.best_epoch)}.")
    return headline, (f"<h2>Per class ({scored_on} split)</h2>"
                      + _table(["class", "precision", "recall", "F1", "images"], per_class))


def _html(run: Run, evaluation: Evaluation | None, scored_on: str, files: list[Path]) -> str:
    record = run.record
    headline, per_class = _scores(run, evaluation, scored_on)
    summary = summarize(run.network)
    layers = [list(row) for row in summary.table_rows()]
    title = f"convnet run {run.path.name if run.path else ''}"
    pictures = "".join(f"<figure>{_img(path, path.stem)}<figcaption>{path.name}"
                       "</figcaption></figure>" for path in files)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:2px 8px;
text-align:right}}img{{max-width:100%}}pre{{background:#f5f5f5;padding:1em;overflow:auto}}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{headline}</p>
{pictures}
{per_class}
{_honesty(run, evaluation, scored_on)}
{leaks_section(run)}
{suspects_section(run)}
<h2>Model</h2><p><code>{html.escape(run.network.spec)}</code>: {summary.params:,}
parameters, input {format_shape((run.input_shape[2], *run.input_shape[:2]))}.</p>
{_table(["#", "layer", "output H×W×D", "parameters", "multiply-adds", "receptive field"],
        layers)}
<p>{html.escape(summary.comparison())}</p>
<h2>Configuration</h2><pre>{html.escape(json.dumps(record.config.to_dict(), indent=2))}</pre>
</body></html>
"""
