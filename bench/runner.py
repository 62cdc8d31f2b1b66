"""Run one benchmark case and keep what it printed as a row stamped with the commit, the
machine, its CPU flags, the date and the command, in bench/rows.jsonl."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from suites import SUITES, Case

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ROWS = HERE / "rows.jsonl"
KEPT_LINES = 80  # of a case's standard output, the last lines kept in its row


def commit() -> str:
    """The checkout's commit, with ``+changes`` when src/ or bench/ differ from it."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""
    head = git("rev-parse", "--short=12", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--", "src", "bench", ":!bench/rows.jsonl",
                  ":!bench/RESULTS.md")
    return head + ("+changes" if changed else "")


def command(case: Case, extra: list[str]) -> list[str]:
    return [sys.executable, str(HERE / f"{case.script}.py"), *case.args, *extra]


def run(suite: str, name: str, extra: list[str], rows: Path = ROWS) -> dict:
    """Run ``suite``/``name`` (its output shown as it comes) and append its row to
    ``rows``; returns the row."""
    from benchdata import cpu_flags, machine

    case = SUITES[suite].cases[name]
    if case.needs and not extra:
        raise SystemExit(f"error: bench {suite} {name} needs {case.needs} after --, e.g. "
                         f"python -m bench {suite} {name} -- {case.needs.split()[0]}")
    argv = command(case, extra)
    shown = " ".join(["python", f"bench/{case.script}.py", *case.args, *extra])
    print(f"$ {shown}", flush=True)
    started = time.perf_counter()
    lines: list[str] = []
    env = {**os.environ, "BENCH_SUITE": suite, "BENCH_CASE": name}
    with subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env) as child:
        for line in child.stdout:
            print(line, end="", flush=True)
            lines.append(line.rstrip("\n"))
    row = {"suite": suite, "case": name, "command": shown, "commit": commit(),
           "machine": machine(), "flags": cpu_flags(),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "seconds": round(time.perf_counter() - started, 1), "exit": child.returncode,
           "output": lines[-KEPT_LINES:]}
    with rows.open("a") as handle:
        handle.write(json.dumps(row) + "\n")
    return row


def read_rows(rows: Path = ROWS) -> list[dict]:
    """Every row, oldest first; a damaged line is named and skipped."""
    if not rows.is_file():
        return []
    found = []
    for number, line in enumerate(rows.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            found.append(json.loads(line))
        except json.JSONDecodeError:
            print(f"warning: {rows}:{number} is not a JSON row; skipped", file=sys.stderr)
    return found
