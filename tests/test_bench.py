"""bench/ as one runner: every benchmark script is a case of a suite, a run leaves a row
stamped with commit, machine, CPU flags, date and command, and RESULTS.md is written from
the rows (current figures first)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import results  # noqa: E402
import runner  # noqa: E402
from suites import HELPERS, SUITES, Case, Suite  # noqa: E402


def test_every_bench_script_is_a_case_of_a_suite():
    scripts = {path.stem for path in BENCH.glob("*.py")} - HELPERS
    cased = {case.script for suite in SUITES.values() for case in suite.cases.values()}
    assert scripts - cased == set()
    assert cased - scripts == set()  # and every case names a script that is there


def test_a_case_run_leaves_a_stamped_row_and_results_show_it_first(tmp_path, monkeypatch):
    (tmp_path / "tiny.py").write_text("import sys\nprint('images/s', 123)\n"
                                      "print('args', sys.argv[1:])\n")
    monkeypatch.setattr(runner, "HERE", tmp_path)
    monkeypatch.setitem(SUITES, "toy", Suite("a toy suite", {
        "one": Case("tiny", "prints a figure", ("--fast",))}))
    rows = tmp_path / "rows.jsonl"
    first = runner.run("toy", "one", ["extra"], rows)
    second = runner.run("toy", "one", [], rows)
    assert first["output"] == ["images/s 123", "args ['--fast', 'extra']"]
    assert first["exit"] == 0 and first["command"] == "python bench/tiny.py --fast extra"
    for key in ("commit", "machine", "flags", "date", "seconds"):
        assert first[key] not in (None, "")
    assert runner.read_rows(rows) == [first, second]
    page = results.render(runner.read_rows(rows), "# History\n\nold figures\n")
    toy = page.index("### toy one")
    assert page.index("python bench/tiny.py --fast`", toy) < page.index("Earlier runs", toy) \
        < page.index("python bench/tiny.py --fast extra", toy)  # the newest run first
    assert page.rstrip().endswith("old figures")
    assert "Not yet run through the runner: `python -m bench default digits`" in page


def test_a_case_that_needs_something_says_what(monkeypatch):
    with pytest.raises(SystemExit, match="needs a run folder to serve after --"):
        runner.run("serving", "load", [])


@pytest.mark.parametrize("argv, code, said", [
    (["nosuch"], 2, "error: no suite 'nosuch'"),
    (["speed", "nosuch"], 2, "error: suite speed has no case 'nosuch'; its cases are"),
    ([], 0, "python -m bench results"),
])
def test_the_runner_command_line(argv, code, said):
    done = subprocess.run([sys.executable, "-m", "bench", *argv], cwd=BENCH.parent,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == code and said in done.stdout + done.stderr


def test_results_md_is_written_from_the_rows():
    assert (BENCH / "RESULTS.md").read_text() == results.render(
        runner.read_rows(), (BENCH / "HISTORY.md").read_text())
