"""The README's tour runs as written: every `$ convnet ...` line of it, in order, in a fresh
folder, exits as shown (0, or 1 with the error line printed exactly), and then its Python
snippet runs."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from convnet.cli import main
from datasets_helpers import bad_folder

README = Path(__file__).resolve().parents[1] / "README.md"
pytest.importorskip("matplotlib")


def _blocks(text: str) -> list[tuple[str, list[str]]]:
    """(language, lines) of every fenced code block after the heading "A tour"."""
    tour = text[text.index("## A tour"):]
    return [(language, body.splitlines())
            for language, body in re.findall(r"```(\w*)\n(.*?)```", tour, flags=re.S)]


def _commands(text: str) -> list[tuple[str, str | None]]:
    """(command, what it must end with: an ``error: ...`` line, ``^C`` for a run that the
    reader interrupts, or None for success) in the tour's order."""
    found = []
    for _, lines in _blocks(text):
        for number, line in enumerate(lines):
            if line.startswith("$ convnet "):
                output = [*lines[number + 1:], "$"]
                output = output[:next(i for i, o in enumerate(output) if o.startswith("$"))]
                ending = next((o for o in output if o.startswith("error: ") or o == "^C"),
                              None)
                found.append((line[2:], ending))
    return found


def _interrupt(command: str, folder) -> None:
    """Run ``command`` as a child process and press Ctrl-C once its second epoch ends."""
    child = subprocess.Popen([sys.executable, "-m", "convnet", *shlex.split(command)[1:]],
                             cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        for line in child.stdout:
            if line.startswith("epoch 2/"):
                child.send_signal(signal.SIGINT)
                break
        _, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 130, err
    assert re.fullmatch(r"interrupted at epoch \d+ step \d+; resume with: convnet train "
                        r"--resume runs/\S+\n", err), err


def test_the_tour_has_the_commands_a_newcomer_needs():
    names = {shlex.split(command)[1] for command, _ in _commands(README.read_text())}
    assert {"train", "summary", "evaluate", "datasets", "predict", "explain", "report",
            "check-data"} <= names


def test_every_tour_command_runs_as_written_in_order(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONVNET_CACHE", str(tmp_path / "cache"))
    bad_folder(tmp_path / "pets")  # the folder with one of every bad file the tour shows
    for command, error in _commands(README.read_text()):
        if error == "^C":
            _interrupt(command, tmp_path)
            continue
        code = main(shlex.split(command)[1:])
        captured = capsys.readouterr()
        if error is None:
            assert code == 0, (command, captured.err)
        else:
            assert code == 1 and captured.err.strip() == error, (command, captured.err)
    python = [lines for language, lines in _blocks(README.read_text()) if language == "python"]
    assert len(python) == 1
    exec(compile("\n".join(python[0]), "README.md", "exec"), {})  # noqa: S102
    printed = capsys.readouterr().out
    assert printed.count("xo-samples/") == 4 and "precision" in printed
