"""The `convnet` command: each subcommand parses its arguments and calls one library function."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console

from convnet.cli import render
from convnet.errors import ConvnetError
from convnet.recipes import RECIPES

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


class _Failed(Exception):
    """Some inputs failed; the messages were already printed."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="convnet")
def app() -> None:
    """Build, train, inspect and use convolutional neural networks for images."""


@app.command()
@click.option("--data", help="Built-in name (see `convnet datasets`) or a folder. [digits]")
@click.option("--arch", help="Preset (default, small, lenet, tinyvgg, keras-mnist), a spec "
              "string, or auto: default for small grayscale images, small otherwise. [auto]")
@click.option("--epochs", type=int, help="Passes over the training split. [14]")
@click.option("--batch-size", type=int, help="Images per gradient step. [128]")
@click.option("--lr", type=float, help="Peak learning rate. [8e-3 adamw, 1e-3 adam, 0.05 sgd]")
@click.option("--optimizer", type=click.Choice(["adamw", "adam", "sgd"]), help="[adamw]")
@click.option("--schedule", type=click.Choice(["onecycle", "cosine", "constant"]),
              help="Learning-rate schedule. [onecycle]")
@click.option("--weight-decay", type=float, help="L2 penalty. [5e-4]")
@click.option("--label-smoothing", type=float, help="0 for plain log loss. [0.1]")
@click.option("--ema", type=float, help="Keep a moving average of the weights with this "
              "per-step decay and score and save it; 0: off. [0.98]")
@click.option("--augment", type=click.Choice(["none", "light", "strong"]),
              help="light: shifts (+flips where they make sense); strong: + crop, colour "
                   "jitter, cutout. [light]")
@click.option("--flip/--no-flip", default=None, help="Random left-right flips. [by data]")
@click.option("--shift", type=int, help="Max random translation in pixels. [by policy]")
@click.option("--crop-scale", type=float, help="Random resized crop: min area kept, 0-1.")
@click.option("--rotate", type=float, help="Max random rotation in degrees (and zoom in %).")
@click.option("--jitter", type=float, help="Colour jitter strength, 0-1. [by policy]")
@click.option("--cutout", type=int, help="Cutout square side in pixels. [by policy]")
@click.option("--balance", type=click.Choice(["auto", "weights", "sampler", "none"]),
              help="Class imbalance: loss weights or an even sampler. [auto]")
@click.option("--image-size", type=int, help="Folder data: resize to this side. [by data]")
@click.option("--resize", type=click.Choice(["crop", "pad"]),
              help="Folder data: keep the aspect ratio by centre crop or padding. [crop]")
@click.option("--strict", is_flag=True, default=None,
              help="Refuse to train if the data scan finds any bad file.")
@click.option("--seed", type=int, help="Random seed. [0]")
@click.option("--val-split", type=float, help="Fraction of each class held out. [0.1]")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="[auto]")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]),
              help="bf16 autocast; auto uses it where the hardware has bf16 natively. [auto]")
@click.option("--compile", type=click.Choice(["auto", "on", "off"]),
              help="torch.compile the network; auto leaves it off (slower here). [auto]")
@click.option("--tta", type=click.Choice(["auto", "flip", "none"]),
              help="Test-time augmentation: average with the mirror image. auto: when "
                   "training flips. [auto]")
@click.option("--recipe", type=click.Choice(list(RECIPES)),
              help="Named defaults for the options not given, e.g. cifar-fast (GPU) or "
                   "cifar-fast-cpu.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path),
              help="Run folder to create. [runs/<data>-<arch>-<time>]")
@click.option("--report/--no-report", "make_report", default=True,
              help="Draw curves, confusion, wrong guesses and report.html after training.")
def train(out_dir: Path | None, make_report: bool, **options) -> None:
    """Train a CNN; with no options, the `default` preset on the built-in `digits`."""
    from convnet.cli.progress import RichProgress
    from convnet.config import TrainConfig
    from convnet.train import train as run_training

    config = TrainConfig.from_dict({k: v for k, v in options.items() if v is not None})
    result = run_training(config, out=out_dir, callbacks=[RichProgress(out)])
    if make_report:
        _report_after_training(result.path)


def _report_after_training(folder: Path) -> None:
    """The run is saved already: a report that cannot be drawn is a note, not a failure."""
    from convnet.report import report as write_report

    try:
        result = write_report(folder)
    except ConvnetError as error:
        err.print(f"note: no report drawn ({error})", soft_wrap=True, markup=False)
        return
    out.print(f"Report: {result.html}")


@app.command("check-data")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--image-size", type=int, help="Side to decode to. [by data]")
@click.option("--resize", type=click.Choice(["crop", "pad"]), default="crop",
              show_default=True, help="Keep the aspect ratio by centre crop or padding.")
@click.option("--all", "show_all", is_flag=True, help="List every bad file, not the first 50.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--strict", is_flag=True, help="Exit 1 if anything is wrong (for CI).")
def check_data(path: Path, image_size: int | None, resize: str, show_all: bool,
               as_json: bool, strict: bool) -> None:
    """Scan a folder or CSV dataset: bad files, empty classes, imbalance, duplicates.

    It decodes every file once, so the next `convnet train` on it starts from the cache.
    """
    from convnet.cli.progress import scan_bar
    from convnet.datasets.images import load_folder

    with scan_bar(err) as progress:
        dataset = load_folder(path, image_size=image_size, resize=resize, progress=progress)
    report = dataset.report
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
    else:
        render.data_report(out, report, limit=None if show_all else 50)
    if strict and report.blocking():
        err.print(f"error: {len(report.blocking())} problem(s) found (--strict).")
        raise _Failed


@app.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--data", help="Dataset to score on. [the run's own]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def evaluate(run: Path, data: str | None, as_json: bool) -> None:
    """Accuracy, per-class precision/recall/F1 and the confusion matrix on a test split."""
    import convnet

    loaded = convnet.load(run)
    result = loaded.evaluate_data(data)
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
    else:
        render.evaluation(out, result, f"{run} on {data or loaded.meta['data']['name']} test")


@app.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--top", type=click.IntRange(min=1), default=3, show_default=True,
              help="Classes shown per image.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV, one row per file.")
def predict(run: Path, images: tuple[Path, ...], top: int, as_json: bool, as_csv: bool) -> None:
    """Class probabilities for image files or folders: "0.92 dog, 0.08 cat"."""
    import convnet
    from convnet.preprocess import expand_paths

    loaded = convnet.load(run)
    paths = expand_paths(list(images))
    if not paths:
        raise ConvnetError(f"No image files found in {', '.join(map(str, images))}.")
    results = loaded.predict_files(paths)
    style = "json" if as_json else "csv" if as_csv else "text"
    render.predictions(out, results, top, style, loaded.classes)
    failed = sum(1 for r in results if r.error)
    if failed:
        err.print(f"error: {failed} of {len(results)} file(s) could not be predicted.")
        raise _Failed


@app.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("image", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path),
              help="Folder for the PNGs. [RUN/explain/<image name>]")
@click.option("--class", "cls", help="Also draw Grad-CAM for this class.")
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True,
              help="Classes in the probability chart.")
@click.option("--at", "at", metavar="LAYER:Y,X[,FILTER]",
              help="Print the arithmetic behind one value of a conv layer's feature map "
                   "(layer numbers as in `convnet summary`) instead of drawing.")
def explain(run: Path, image: Path, out_dir: Path | None, cls: str | None, top: int,
            at: str | None) -> None:
    """What the network sees in one image: feature maps, filters, Grad-CAM, probabilities."""
    import convnet
    from convnet.explain import explain as draw
    from convnet.inspect import parse_at

    loaded = convnet.load(run)
    if at is not None:
        render.arithmetic(out, loaded.explain_at(image, *parse_at(at)))
        return
    folder = out_dir or run / "explain" / image.stem
    result = draw(loaded, image, folder, cls=cls, top=top)
    out.print(f"{image}: " + ", ".join(f"{p:.2f} {name}" for name, p in result.probabilities))
    out.print(f"{len(result.files)} pictures written to {folder}/")


@app.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--data", help="Dataset to rebuild the splits from. [the run's own]")
def report(run: Path, data: str | None) -> None:
    """curves.png, confusion.png, wrong.png and a self-contained report.html in the run."""
    from convnet.report import report as write_report

    result = write_report(run, data)
    out.print(f"{result.scored_on} accuracy {result.evaluation.accuracy:.2%}; wrote "
              + ", ".join(path.name for path in result.files) + f" and {result.html}")


@app.command()
@click.argument("target")
@click.option("--input", "input_shape", default="28x28x1", show_default=True,
              help="Input H×W×C.")
@click.option("--classes", type=int, default=10, show_default=True, help="Output classes.")
@click.option("--hidden", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Hidden units of the fully connected network compared against.")
def summary(target: str, input_shape: str, classes: int, hidden: int) -> None:
    """Layers, shapes, parameters, multiply-adds, receptive fields of a spec, preset or run."""
    import convnet

    if Path(target).is_dir():
        network = convnet.load(target).network
    else:
        network = convnet.build(target, input_shape, classes)
    render.summary(out, convnet.summarize(network, hidden))


@app.command()
def datasets() -> None:
    """What --data accepts."""
    from convnet.datasets import catalogue

    render.catalogue(out, catalogue())


def main(argv: list[str] | None = None) -> int:
    """Entry point: one line on stderr and a non-zero exit for any bad input."""
    try:
        app.main(args=argv, prog_name="convnet", standalone_mode=False)
    except ConvnetError as error:
        err.print(f"error: {error}", soft_wrap=True, markup=False)
        return 1
    except _Failed:
        return 1
    except click.UsageError as error:
        where = error.ctx.command_path if error.ctx else "convnet"
        err.print(f"error: {error.format_message()} (see '{where} --help')", soft_wrap=True,
                  markup=False)
        return 2
    except click.ClickException as error:
        err.print(f"error: {error.format_message()}", soft_wrap=True, markup=False)
        return 1
    except (click.Abort, KeyboardInterrupt):
        err.print("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
