"""The data-cleaning commands: `convnet check-data` (bad files, imbalance, copies and
leakage) and `convnet suspects` (likely mislabelled images, from out-of-fold
predictions)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from convnet.clean import FOLDS, METHODS
from convnet.data.preprocess import RESIZE_MODES


@click.command("check-data")
@click.argument("data")
@click.option("--image-size", type=int, help="Side to decode to. [by data]")
@click.option("--resize", type=click.Choice(RESIZE_MODES), default="crop",
              show_default=True, help="Keep the aspect ratio by centre crop or padding.")
@click.option("--all", "show_all", is_flag=True, help="List every bad file, not the first 50.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--strict", is_flag=True, help="Exit 1 if anything is wrong (for CI).")
@click.option("--features/--no-features", default=True, show_default=True,
              help="Also compare photos by ImageNet features (EfficientNet-Lite0's).")
def check_data(data: str, image_size: int | None, resize: str, show_all: bool,
               as_json: bool, strict: bool, features: bool) -> None:
    """Check what --data DATA would train on: any form train takes (a folder of class
    folders, a CSV, MNIST/CIFAR files, a built-in name).

    A folder of images gets every file checked (bad files, empty classes, imbalance,
    duplicates) and decoded once, so the next `convnet train` on it starts from the cache.
    """
    from convnet import data as datasets
    from convnet.cli import render
    from convnet.cli.console import Failed as _Failed
    from convnet.cli.console import err, out
    from convnet.cli.progress import scan_bar
    from convnet.features import copies

    with scan_bar(err) as progress, scan_bar(err, "looking for copies") as searched, \
            scan_bar(err, "ImageNet features") as computed:
        dataset = datasets.load(data, image_size=image_size, resize=resize, progress=progress,
                                near=True, finders=copies.finders(computed) if features else (),
                                near_progress=searched)
    report = dataset.report
    if report is None:  # official files or generated data: no per-file scan to show
        overview = render.dataset_overview(dataset)
        if as_json:
            out.print_json(json.dumps(overview))
        else:
            render.overview(out, overview)
        return
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
    else:
        render.data_report(out, report, limit=None if show_all else 50)
    if strict and report.blocking():
        err.print(f"error: {len(report.blocking())} problem(s) found (--strict).")
        raise _Failed


@click.command()
@click.argument("source", metavar="DATA|RUN")
@click.option("--top", type=click.IntRange(min=1), default=20, show_default=True,
              help="Suspects shown, drawn and (with --fix-into) moved.")
@click.option("--csv", "csv_file", type=click.Path(path_type=Path),
              help="Write every training image, ranked, to this CSV.")
@click.option("--sheet", type=click.Path(path_type=Path),
              help="Contact sheet PNG of the top suspects. [RUN/suspects.png or "
                   "./suspects-<data>.png]")
@click.option("--fix-into", "fix_into", type=click.Path(path_type=Path),
              help="Copy the dataset folder here with the top suspects moved to the "
                   "suggested class; the original is not touched.")
@click.option("--method", type=click.Choice(METHODS), default="auto", show_default=True,
              help="cnn: brief k-fold CNN runs; imagenet: k-fold probes on ImageNet "
                   "features; auto: as the training plan would start.")
@click.option("--folds", type=click.IntRange(min=2), default=FOLDS, show_default=True,
              help="Parts the training images are dealt into; each is judged by a model "
                   "trained on the others.")
@click.option("--epochs", type=click.IntRange(min=1),
              help="Epochs of each fold's CNN. [1/3 of the plan's]")
@click.option("--arch", default="auto", show_default=True,
              help="The CNN of each fold (a preset or spec, as train takes).")
@click.option("--image-size", type=click.IntRange(min=1), help="Folder data: side to decode "
              "to. [by data]")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the top suspects as JSON.")
def suspects(source: str, top: int, csv_file: Path | None, sheet: Path | None,
             fix_into: Path | None, method: str, folds: int, epochs: int | None, arch: str,
             image_size: int | None, seed: int, as_json: bool) -> None:
    """Rank the training images whose label the data disagrees with (likely mislabelled),
    by cleanlab's confident learning on predictions from models that never saw them.

    DATA is anything `train --data` takes; RUN, a run folder, whose data and settings are
    used (and whose report then lists the suspects).
    """
    from convnet.clean.suspects import find_suspects
    from convnet.cli import render
    from convnet.cli.console import err, out
    from convnet.cli.progress import FoldBar, scan_bar

    is_run = (Path(source) / "model.json").is_file()

    def notify(line: str) -> None:
        err.print(line, markup=False, soft_wrap=True)

    with scan_bar(err) as progress, FoldBar(err) as bar, \
            scan_bar(err, "ImageNet features") as features:
        found = find_suspects(source, method=method, folds=folds, epochs=epochs, arch=arch,
                              image_size=image_size, seed=seed, notify=notify,
                              progress=progress, callbacks=[bar], features=features)
    written = []
    if csv_file is not None:
        found.write_csv(csv_file)
        written.append(str(csv_file))
    if found.flagged:
        sheet = sheet or (Path(source) / "suspects.png" if is_run else
                          Path(f"suspects-{found.data}.png"))
        written.append(str(found.sheet(sheet, top)))
    if is_run:
        found.save(Path(source) / "suspects.json")
        written.append(str(Path(source) / "suspects.json"))
    if as_json:
        out.print_json(json.dumps(found.to_dict(top)))
    else:
        render.suspects(out, found, top)
    if written:
        err.print(f"wrote {', '.join(written)}", markup=False, soft_wrap=True)
    if fix_into is not None:
        moved = found.fix_into(fix_into, top)
        err.print(f"copied {found.folder} to {fix_into} with {len(moved)} image(s) moved to "
                  "the suggested class", markup=False, soft_wrap=True)
    if is_run:  # the run's page lists the suspects it now has
        from convnet.cli.console import report_after_training

        report_after_training(Path(source))
