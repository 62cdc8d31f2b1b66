"""The commands around runs: the learning-rate range test, comparing runs, and the studio
that trains in the browser."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from convnet.cli.options import config_from, config_options


@click.command("lr-find")
@config_options
@click.option("--plot", type=click.Path(path_type=Path), default=Path("lr-find.png"),
              show_default=True, help="PNG of the loss against the learning rate.")
def lr_find_command(plot: Path, **options) -> None:
    """The learning-rate range test on the run these options plan: its loss as the lr
    grows, and the lr where it falls fastest (`--lr find` trains with it)."""
    from convnet.cli.console import out
    from convnet.plan.lr_finder import find_lr
    from convnet.plots import lr_sweep

    options.pop("lr", None)
    found = find_lr(config_from(options))
    lr_sweep(found.lrs, found.losses, found.suggestion, plot)
    out.print(f"suggested lr: {found.suggestion:.3g} (a sweep of {len(found.lrs)} steps from "
              f"{found.lrs[0]:.0e} to {found.lrs[-1]:.2g}); wrote {plot}", soft_wrap=True)


@click.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--csv", "as_csv", is_flag=True, help="Print the table as CSV.")
@click.option("--plot", type=click.Path(path_type=Path), default=Path("compare.png"),
              show_default=True, help="PNG of the runs' curves overlaid.")
def compare_command(runs: tuple[Path, ...], as_csv: bool, plot: Path) -> None:
    """The settings in which RUNS differ, their scores side by side, their curves in one
    PNG."""
    from convnet.cli import render
    from convnet.cli.console import err, out
    from convnet.explain.compare import compare, draw

    found = compare(list(runs))
    if as_csv:
        sys.stdout.write(found.to_csv())
    else:
        render.comparison(out, found)
    err.print(f"wrote {draw(found, plot)}", markup=False, soft_wrap=True)


@click.command("studio")
@click.argument("folder", default="studio", type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback needs --api-key.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--api-key", envvar="CONVNET_API_KEY",
              help="Require this key (X-API-Key) on every route but the health checks.")
def studio_command(folder: Path, host: str, port: int, api_key: str | None) -> None:
    """Train in the browser: datasets, training jobs and their models in FOLDER, on a web
    page and a JSON API (docs at /docs). Ctrl-C stops; a running job resumes next time."""
    from convnet.cli.console import out
    from convnet.studio import studio

    out.print(f"studio over {folder}/ on http://{host}:{port}/ (API docs: /docs)",
              soft_wrap=True)
    studio(folder, host, port, api_key)
