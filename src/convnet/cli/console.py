"""Where the command line prints: standard output for results, standard error for progress
and errors."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from convnet.runs.evaluate import Scored

out = Console(highlight=False, soft_wrap=True)  # log lines never break mid-word
err = Console(stderr=True, highlight=False, soft_wrap=True)


class Failed(Exception):
    """Some inputs failed; the messages were already printed."""


def report_after_training(folder: Path, known: Mapping[str, Scored] | None = None) -> None:
    """The run is saved already: a report that cannot be drawn is a note, not a failure.
    ``known``: the run's logits on its splits, as training returned them."""
    from convnet.cli.messages import to_flags
    from convnet.errors import ConvnetError
    from convnet.explain.report import report as write_report

    try:
        result = write_report(folder, known=known)
    except ConvnetError as error:
        err.print(f"note: no report drawn ({to_flags(str(error))})", soft_wrap=True,
                  markup=False)
        return
    out.print(f"Report: {result.html}")
