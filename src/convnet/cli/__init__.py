"""The `convnet` command: each subcommand parses its arguments and calls one library function."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from convnet.cli import cleaning, render, tools
from convnet.cli.console import Failed as _Failed
from convnet.cli.console import err, out, report_after_training
from convnet.cli.launch import Exit, lost_peer_line, torchrun_train
from convnet.cli.messages import to_flags
from convnet.cli.options import check_run_first, config_from, config_options
from convnet.errors import ConvnetError, Interrupted


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="convnet")
def app() -> None:
    """Build, train, inspect and use convolutional neural networks for images."""


@app.command()
@config_options
@click.option("--out", "out_dir", type=click.Path(path_type=Path),
              help="Run folder to create. [runs/<data>-<arch>-<time>]")
@click.option("--report/--no-report", "make_report", default=True,
              help="Draw curves, confusion, wrong guesses and report.html after training.")
@click.option("--resume", type=click.Path(path_type=Path),
              help="Continue an interrupted run from its last checkpoint, with its own "
                   "settings (--epochs may be raised).")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes on this machine (starts torchrun); --batch-size stays global.")
def train(out_dir: Path | None, make_report: bool, resume: Path | None, nproc: int,
          **options) -> None:
    """Train a CNN; with no options, the `default` preset on the built-in `digits`.

    Ctrl-C (or SIGTERM) stops after the current step and writes a checkpoint; a second
    Ctrl-C stops at once. `--resume RUN` goes on from the checkpoint.
    """
    from convnet.cli.progress import RichProgress
    from convnet.make import train as run_training
    from convnet.plan.budget import time_left
    from convnet.resources import process_started
    from convnet.training import compiler_import

    if nproc > 1:
        raise Exit(torchrun_train(nproc, _ARGV))
    compiler_import.defer()  # a run that compiles nothing imports no compiler
    progress, started = [RichProgress(out)], process_started()
    if resume is not None:
        given = {name: value for name, value in options.items() if value is not None}
        result = run_training(resume=resume, out=out_dir, callbacks=progress, **given)
    else:
        find = {"lr": options.pop("lr")} if options.get("lr") == "find" else {}
        result = run_training(config_from(options), out=out_dir, callbacks=progress,
                              started=started, **find)
    budget = result.run.record.config.time
    left = time_left(budget, started)
    if make_report and left is not None and left < result.report_seconds:
        err.print(f"note: no report drawn, to hold --time {budget} (it takes about "
                  f"{result.report_seconds:.0f} s here and {max(left, 0):.0f} s are left); "
                  f"`convnet report {result.path}` draws it", soft_wrap=True, markup=False)
    elif make_report:
        report_after_training(result.path, result.scored)


@app.command("plan")
@config_options
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan_command(as_json: bool, **options) -> None:
    """Print the plan `convnet train` would follow with these options, without training.

    Every option left out is planned from the data (its sizes, counts, channels, a check
    of whether mirrored images keep their class) and this machine's measured speed;
    --time fits the plan into a budget.
    """
    from convnet.plan import preview

    planned = preview(config_from(options))
    if as_json:
        out.print_json(json.dumps(planned.to_dict()))
    else:
        render.plan(out, planned)


@app.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--data", help="Dataset to score on. [the run's own]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def evaluate(run: Path, data: str | None, as_json: bool) -> None:
    """Accuracy, per-class precision/recall/F1 and the confusion matrix.

    On the run's test split (or, without one, its held-out validation images), or on
    --data: any labelled images of the run's classes, e.g. a folder with only test/.
    """
    import convnet

    loaded = convnet.load(run)
    split, what = loaded.labelled(data)
    result = loaded.evaluate(split)
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
    else:
        render.evaluation(out, result, f"{run} on {what}")


@app.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--top", type=click.IntRange(min=1), default=3, show_default=True,
              help="Classes shown per image.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV, one row per file.")
@click.option("--backend", type=click.Choice(["torch", "onnx"]), default="torch",
              show_default=True, help="onnx: answer from RUN/model.onnx (`convnet export`).")
@click.option("--sort-into", "sort_dir", type=click.Path(path_type=Path),
              help="Copy each image into SORT_DIR/<predicted class>/, with the CSV beside.")
@click.option("--unknown-below", type=click.FloatRange(0, 1), default=0.0,
              help="With --sort-into: a top probability under this goes to unknown/.")
@click.option("--link", is_flag=True, help="With --sort-into: symlink instead of copying.")
@click.option("--unknown", "unknown_text", metavar="SHARE|off",
              help="'unknown' for images unlike the training images, the threshold keeping "
                   "SHARE of known ones known [0.95 where the run has a detector]; off: none.")
@click.option("--set", "coverage", type=float, metavar="COVERAGE",
              help="Also the prediction set: the fewest classes that hold the true one "
                   "COVERAGE of the time (e.g. 0.9), from the run's validation images.")
def predict(run: Path, images: tuple[Path, ...], top: int, as_json: bool, as_csv: bool,
            backend: str, sort_dir: Path | None, unknown_below: float, link: bool,
            unknown_text: str | None, coverage: float | None) -> None:
    """Class probabilities for image files or folders: "0.92 dog, 0.08 cat"."""
    import convnet
    from convnet.data.preprocess import expand_paths
    from convnet.runs.predictor import with_sets
    from convnet.runs.unknown import share_from

    if as_json and as_csv:
        raise click.UsageError("--json and --csv print different formats; give one of them.")
    check_run_first(run, images)
    loaded = convnet.load(run)
    paths = expand_paths(list(images))
    if not paths:
        raise ConvnetError(f"No image files found in {', '.join(map(str, images))}.")
    from convnet.runs.sharded import predict_files

    if coverage is not None:
        loaded.record.calibration.set_floor(coverage)  # a bad --set: one line, no work
    unknown = share_from(unknown_text, loaded.predictor.detector is not None)
    results = predict_files(loaded, paths, _backend(loaded, backend), unknown)
    if results is None:  # another process of a torchrun: rank 0 prints every answer
        return
    results = with_sets(results, loaded.record.calibration, coverage)
    style = "json" if as_json else "csv" if as_csv else "text"
    if sort_dir is not None:
        from convnet.runs.sorting import sort_into

        done = sort_into(results, loaded.classes, sort_dir, unknown_below, link)
        render.sorted_into(out, done, sort_dir)
    else:
        render.predictions(out, results, top, style, loaded.classes)
    failed = sum(1 for r in results if r.error)
    if failed:
        err.print(f"error: {failed} of {len(results)} file(s) could not be predicted.")
        raise _Failed


def _backend(run, name: str):
    """None for the run's own network; the exported model's predictor for ``onnx``."""
    if name == "torch":
        return None
    from convnet.export import OnnxPredictor

    model = run.path / "model.onnx"
    if not model.is_file():
        raise ConvnetError(f"{model} does not exist. Export the run first: convnet export "
                           f"{run.path}")
    return OnnxPredictor(model, run.classes)


@app.command("export")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--format", "kind", type=click.Choice(["onnx"]), default="onnx",
              show_default=True, help="File format.")
@click.option("--out", "out_file", type=click.Path(path_type=Path),
              help="File to write. [RUN/model.onnx]")
@click.option("--opset", type=click.IntRange(min=1), default=18, show_default=True,
              help="ONNX operator set version.")
@click.option("--batch", default="dynamic", show_default=True,
              help="Batch size the model takes: dynamic (any) or a number.")
@click.option("--force", is_flag=True, help="Replace an existing file.")
@click.option("--data", help="Images for the parity check. [the run's test or validation]")
@click.option("--int8", is_flag=True, help="Quantize the convolutions to int8 (ranges from "
              "the run's training images) into RUN/model.int8.onnx, measured on its test "
              "images; refused if accuracy drops by more than a point.")
@click.option("--accept-drop", is_flag=True, help="With --int8: keep the file even so.")
def export(run: Path, kind: str, out_file: Path | None, opset: int, batch: str, force: bool,
           data: str | None, int8: bool, accept_drop: bool) -> None:
    """Export RUN as a model that takes uint8 pixels (N, H, W, C) and returns probabilities,
    kept only if it gives the run's own probabilities (checked on real images)."""
    from convnet.export import export_onnx

    if int8:
        from convnet.export.int8 import quantize_int8

        render.int8(out, quantize_int8(run, out_file, force=force, accept_drop=accept_drop))
        return
    if batch != "dynamic" and not batch.isdigit():
        raise click.BadParameter(f"must be 'dynamic' or a number, not {batch!r}",
                                 param_hint="--batch")
    done = export_onnx(run, out_file, opset=opset, batch=None if batch == "dynamic"
                       else int(batch), force=force, data=data)
    parity = done.parity
    out.print(f"wrote {done.path} ({done.bytes / 1000:,.0f} KB, opset {opset}, batch {batch}); "
              f"parity with PyTorch on {parity.images} images of {parity.source}: max |Δp| "
              f"{parity.max_diff:.1e}, top-1 agreement {parity.agree}/{parity.images}")


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
@click.option("--maps", default="32", show_default=True, metavar="N|all",
              help="Per layer, the N maps that respond most to the image, strongest first; "
                   "all: every map, in filter order.")
def explain(run: Path, image: Path, out_dir: Path | None, cls: str | None, top: int,
            at: str | None, maps: str) -> None:
    """What the network sees in one image: feature maps, filters, Grad-CAM, probabilities."""
    import convnet
    from convnet.explain.pictures import explain as draw
    from convnet.network.arithmetic import parse_at

    loaded = convnet.load(run)
    if at is not None:
        render.arithmetic(out, loaded.explain_at(image, *parse_at(at)))
        return
    folder = out_dir or run / "explain" / image.stem
    result = draw(loaded, image, folder, cls=cls, top=top,
                  maps=int(maps) if maps.isdigit() else maps)
    out.print(f"{image}: " + ", ".join(f"{p:.2f} {name}" for name, p in result.probabilities))
    out.print(f"{len(result.files)} pictures written to {folder}/")


@app.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--data", help="Dataset to rebuild the splits from. [the run's own]")
def report(run: Path, data: str | None) -> None:
    """curves.png, confusion.png, wrong.png and a self-contained report.html in the run."""
    from convnet.explain.report import report as write_report

    result = write_report(run, data)
    scored = "no validation or test images to score" if result.evaluation is None else \
        f"{result.scored_on} accuracy {result.evaluation.accuracy:.2%}"
    out.print(f"{scored}; wrote " + ", ".join(path.name for path in result.files)
              + f" and {result.html}", soft_wrap=True)


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
    from convnet.runs.builtin import is_builtin

    if Path(target).is_dir() or is_builtin(target):
        network = convnet.load(target).network
    else:
        network = convnet.build(target, input_shape, classes)
    render.summary(out, convnet.summarize(network, hidden))


@app.group(invoke_without_command=True)
@click.pass_context
def datasets(context: click.Context) -> None:
    """What --data accepts; `datasets export` writes a split out as image files."""
    if context.invoked_subcommand is None:
        from convnet.data import catalogue

        render.catalogue(out, catalogue())


@datasets.command("export")
@click.argument("data")
@click.argument("out_dir", metavar="OUT", type=click.Path(path_type=Path))
@click.option("--split", default="test", show_default=True, help="train, val or test.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many images, "
              "shared between the classes. [all]")
def export_images(data: str, out_dir: Path, split: str, limit: int | None) -> None:
    """Write DATA's images as PNGs in OUT/<class>/ (samples to predict and explain)."""
    from convnet import data as datasets_module

    written = datasets_module.export(datasets_module.load(data), out_dir, split, limit)
    classes = len({path.parent.name for path in written})
    out.print(f"wrote {len(written):,} images of {classes} classes to {out_dir}/",
              soft_wrap=True)


@app.command("serve")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback reaches other machines.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--backend", type=click.Choice(["auto", "torch", "onnx", "int8"]),
              default="auto",
              show_default=True, help="auto: onnxruntime when installed (faster here); "
              "int8: RUN/model.int8.onnx (convnet export --int8).")
@click.option("--api-key", envvar="CONVNET_API_KEY",
              help="Require this key (X-API-Key) on every route but the health checks.")
def serve_command(runs: tuple[Path, ...], host: str, port: int, backend: str,
                  api_key: str | None) -> None:
    """A web page and a JSON API for RUNS (docs at /docs); Ctrl-C stops after the
    requests in flight."""
    from convnet.serve import serve

    out.print(f"serving {', '.join(map(str, runs))} on http://{host}:{port}/ (API docs: /docs)",
              soft_wrap=True)
    serve(list(runs), host, port, backend, api_key)


@app.command("runs")
@click.argument("root", default="runs", type=click.Path(path_type=Path))
def runs_command(root: Path) -> None:
    """The runs in ROOT, finished or unfinished, with their data, arch and accuracy."""
    import convnet

    render.run_list(out, convnet.list_runs(root))


app.add_command(cleaning.check_data)
app.add_command(tools.compare_command)
app.add_command(tools.lr_find_command)
app.add_command(tools.studio_command)
app.add_command(cleaning.suspects)
_ARGV: list[str] = []  # the arguments of this invocation, for `train --nproc`


def main(argv: list[str] | None = None) -> int:
    """Entry point: one line on stderr and a non-zero exit for any bad input."""
    if not (sys.argv[1:] if argv is None else argv):  # bare `convnet`: the help, not an error
        with click.Context(app, info_name="convnet") as context:
            out.print(app.get_help(context), markup=False, highlight=False)
        return 0
    global _ARGV
    _ARGV = list(sys.argv[1:] if argv is None else argv)
    from convnet.allocator import keep_freed_memory

    keep_freed_memory()  # batches of photos: reuse freed blocks instead of page faults
    try:
        app.main(args=argv, prog_name="convnet", standalone_mode=False)
    except Exit as leaving:
        return leaving.code
    except Interrupted as stop:
        err.print(f"{stop}; resume with: convnet train --resume {stop.folder}", markup=False)
        return 143 if stop.signal_name == "SIGTERM" else 130
    except ConvnetError as error:
        err.print(f"error: {to_flags(str(error))}", soft_wrap=True, markup=False)
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
    except RuntimeError as error:
        line = lost_peer_line(error)
        if line is None:
            raise  # a bug: keep its traceback
        err.print(line, soft_wrap=True, markup=False)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
