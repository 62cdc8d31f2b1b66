"""bench/RESULTS.md, written from the rows: each suite's current figures (the newest row of
each case) first, its earlier rows below them, then the figures kept from before the runner
(bench/HISTORY.md, as they were written then)."""

from __future__ import annotations

from pathlib import Path

from runner import HERE, ROWS, read_rows
from suites import SUITES

RESULTS = HERE / "RESULTS.md"
HISTORY = HERE / "HISTORY.md"
WIDEST = 400  # characters of an output line shown; a row keeps the whole line


def _shown(line: str) -> str:
    return line if len(line) <= WIDEST else line[:WIDEST] + " …"


def _failed(row: dict) -> str:
    return "" if row["exit"] == 0 else f" — **exited {row['exit']}**"


def _current(row: dict) -> list[str]:
    return [f"`{row['command']}` — commit {row['commit']}, {row['date']}, "
            f"{row['seconds']:.0f} s{_failed(row)}",
            "", f"Machine: {row['machine']}; CPU flags: {row['flags']}.", "",
            "```text", *map(_shown, row["output"]), "```", ""]


def _earlier(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    lines = ["<details><summary>Earlier runs</summary>", ""]
    for row in reversed(rows):
        lines += [f"- {row['date']}, commit {row['commit']}, {row['flags']}, "
                  f"{row['seconds']:.0f} s: `{row['command']}`{_failed(row)}", "",
                  "  ```text", *[f"  {_shown(line)}" for line in row["output"][-20:]],
                  "  ```", ""]
    return lines + ["</details>", ""]


def render(rows: list[dict], history: str = "") -> str:
    """The whole of RESULTS.md for ``rows`` (oldest first) and the kept ``history``."""
    lines = ["# Results", "",
             "Written by `python -m bench results` from bench/rows.jsonl: every row is one run "
             "of a case through the runner (`python -m bench SUITE [CASE]`), stamped with its "
             "commit, machine, CPU flags, date and command. Do not edit by hand. Each suite "
             "shows its current figures (the newest run of each case) first; earlier runs "
             "follow, and the figures from before the runner are kept at the end.", ""]
    for suite, spec in SUITES.items():
        lines += [f"## {suite}: {spec.about}", ""]
        for name, case in spec.cases.items():
            ran = [row for row in rows if row["suite"] == suite and row["case"] == name]
            lines += [f"### {suite} {name}: {case.about}", ""]
            if not ran:
                lines += [f"Not yet run through the runner: `python -m bench {suite} {name}`"
                          + (f" (after `--`: {case.needs})" if case.needs else "")
                          + ". Its earlier figures are in the history below.", ""]
                continue
            lines += _current(ran[-1]) + _earlier(ran[:-1])
    if history:
        lines += ["# History: the figures from before the runner", "",
                  "As written at the time, by issue (bench/HISTORY.md).", "",
                  history.split("\n", 1)[1] if history.startswith("# ") else history]
    return "\n".join(lines).rstrip() + "\n"


def write(rows_path: Path = ROWS, results: Path = RESULTS, history: Path = HISTORY) -> Path:
    kept = history.read_text() if history.is_file() else ""
    results.write_text(render(read_rows(rows_path), kept))
    return results
