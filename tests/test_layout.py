"""The package's stages import one way only: network, data -> train -> runs -> explain -> cli.

Read from the source (every import statement, inside functions too), so a wrong-way import
fails here before it tangles the layout. See docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parent.parent / "src" / "convnet"

# stage -> level; a module may import its own stage or a lower level, never a peer
LEVELS = {
    "base": 0,  # _version, errors, atomic, axes, resources: used by every stage
    "network": 1, "data": 1,
    "train": 2,
    "runs": 3,
    "explain": 4, "export": 4,
    "serve": 5,  # uses export's onnxruntime backend
    "studio": 6,  # trains in the browser; its models answer through serve's routes
    "api": 7,  # the package root, convnet/__init__.py: the public facade
    "cli": 8,
}
BASE = {"_version", "errors", "atomic", "axes", "resources"}


def stage_of(module: str) -> str:
    """``convnet.runs.run`` -> ``runs``; ``convnet`` -> ``api``."""
    parts = module.split(".")
    assert parts[0] == "convnet", module
    if len(parts) == 1:
        return "api"
    if parts[1] in BASE:
        return "base"
    if parts[1] == "__main__":
        return "cli"
    return parts[1]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import of convnet in a module, at any depth."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names
                      if alias.name.split(".")[0] == "convnet"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == "convnet":
            if node.module == "convnet":  # from convnet import data -> convnet.data
                found += [(node.lineno, f"convnet.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def violations(root: Path) -> list[str]:
    """Every import of a peer stage or a higher one, as 'file:line: a imports b'."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        importer = module_name(path, root)
        mine = stage_of(importer)
        for line, target in imported(ast.parse(path.read_text(), str(path))):
            theirs = stage_of(target)
            if theirs != mine and LEVELS[theirs] >= LEVELS[mine]:
                problems.append(f"{path.relative_to(root)}:{line}: {mine} ({importer}) "
                                f"imports {theirs} ({target})")
    return problems


def test_every_import_points_down_the_stages():
    assert violations(SOURCE) == []


def test_every_module_belongs_to_a_known_stage():
    stages = {stage_of(module_name(path, SOURCE)) for path in SOURCE.rglob("*.py")}
    assert stages <= set(LEVELS), stages - set(LEVELS)


@pytest.mark.parametrize("importer, line, stage", [
    ("train/loop.py", "from convnet.runs.format import write_run", "runs"),
    ("data/augment.py", "from convnet.network import build", "network"),  # peers
    ("network/model.py", "    from convnet import runs", "runs"),  # inside a function
    ("runs/run.py", "import convnet.explain.report", "explain"),
    ("explain/report.py", "import convnet", "api"),
])
def test_a_wrong_way_import_is_caught(tmp_path, importer, line, stage):
    root = tmp_path / "convnet"
    for name in ("__init__.py", "errors.py", importer):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("from convnet.errors import ConvnetError\n")
    body = f"def f():\n{line}\n" if line.startswith(" ") else line + "\n"
    (root / importer).write_text(body)
    found = violations(root)
    assert len(found) == 1 and f"imports {stage}" in found[0], found


def test_no_module_is_over_400_lines():
    long = {str(path.relative_to(SOURCE)): count for path in SOURCE.rglob("*.py")
            if (count := len(path.read_text().splitlines())) > 400}
    assert long == {}
