"""Sections of a run's report page about its data: copies that leak between splits, and
likely mislabelled training images (`convnet suspects RUN`), with the HTML helpers the page
shares."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from convnet.data.duplicates import Group
from convnet.runs.format import DATA_REPORT
from convnet.runs.run import Run

LEAKS_SHOWN = 20
SUSPECTS_SHOWN = 20
SUSPECTS_FILE, SHEET_FILE = "suspects.json", "suspects.png"


def img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def leaks_section(run: Run) -> str:
    """The data section: the groups of copies across splits or classes that the scan found
    (from the run's data_report.json; nothing for data without a file scan)."""
    path = None if run.path is None else run.path / DATA_REPORT
    try:
        found = json.loads(path.read_text()) if path is not None else {}
    except (OSError, ValueError):
        return ""
    try:  # runs from before near-duplicates wrote another format: nothing to list
        groups = [Group.from_dict(values) for values in found.get("duplicates", [])]
    except (KeyError, TypeError, ValueError):
        return ""
    leaks = [group for group in groups if group.flagged]
    if not leaks:
        return ""
    root = found.get("root", "")
    rows = [[group.kind, f"{group.similarity:.3f}",
             "; ".join(f"{Path(p).relative_to(root) if p.startswith(root) else p} "
                       f"({split}, {label})" for p, split, label in
                       zip(group.paths, group.splits, group.labels))]
            for group in leaks[:LEAKS_SHOWN]]
    more = f" (the first {LEAKS_SHOWN}; data_report.json lists them all)" \
        if len(leaks) > LEAKS_SHOWN else ""
    dropped = " The run dropped the evaluation copies (dedupe)." \
        if run.record.config.dedupe else " Training with dedupe drops the evaluation copies."
    return (f"<h2>Copies across splits or classes</h2><p>{len(leaks)} group(s){more}: an "
            f"evaluated image that copies a trained one inflates the score.{dropped}</p>"
            + table(["kind", "similarity", "paths (split, class)"], rows))


def suspects_section(run: Run) -> str:
    """The top suspects `convnet suspects RUN` saved in the run, with their contact sheet;
    without them, how to find them."""
    path = None if run.path is None else run.path / SUSPECTS_FILE
    if path is None:
        return ""
    try:
        found = json.loads(path.read_text())
        rows = [[str(rank), _under(row["path"], found.get("folder") or ""), row["given"],
                 f"{row['quality']:.3f}", row["suggested"], f"{row['confidence']:.3f}"]
                for rank, row in enumerate(found["suspects"][:SUSPECTS_SHOWN], start=1)]
    except (OSError, ValueError, KeyError, TypeError):
        return (f"<h2>Likely mislabelled images</h2><p>Not looked for yet: <code>convnet "
                f"suspects {html.escape(str(run.path))}</code> ranks the training images "
                "whose label the data disagrees with and lists them here.</p>")
    sheet = run.path / SHEET_FILE
    picture = img(sheet, "the top suspects") if sheet.is_file() and rows else ""
    said = (f"{found['flagged']:,} of {found['images']:,} training images flagged by "
            f"confident learning on out-of-fold predictions ({html.escape(found['method'])}); "
            f"they agree with {found['agreement']:.1%} of the labels.")
    return (f"<h2>Likely mislabelled images</h2><p>{said} The first {len(rows)}:</p>"
            + table(["#", "path", "given", "p(given)", "suggested", "p(suggested)"], rows)
            + picture)


def _under(path: str, root: str) -> str:
    return str(Path(path).relative_to(root)) if root and path.startswith(root) else path
