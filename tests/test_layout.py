"""The package's stages import one way only (network, data -> training -> features -> runs
-> plan -> make -> clean -> explain, export -> serve -> studio -> cli), no two modules
import each other in a circle, and docs/ARCHITECTURE.md lists every module on disk.

Read from the source (every import statement, inside functions too), so a wrong-way import
or a circle fails here before it tangles the layout.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parent.parent / "src" / "convnet"
ARCHITECTURE = SOURCE.parent.parent / "docs" / "ARCHITECTURE.md"

# stage -> level; a module may import its own stage or a lower level, never a peer
LEVELS = {
    "base": 0,  # _version, errors, atomic, axes, resources: used by every stage
    "network": 1, "data": 1,
    "training": 2,
    "features": 3,  # ImageNet features: the data layer's copy finder, under runs' evaluation
    "runs": 4,
    "plan": 5,
    "make": 6,
    "clean": 7,
    "explain": 8, "export": 8,
    "serve": 9,  # uses export's onnxruntime backend
    "studio": 10,  # trains in the browser; its models answer through serve's routes
    "api": 11,  # the package root, convnet/__init__.py: the public facade
    "cli": 12,
}
BASE = {"_version", "errors", "atomic", "axes", "resources", "extras", "processes", "lazy",
        "allocator", "display", "plots"}


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


def imported(tree: ast.AST, modules: set[str] | None = None) -> list[tuple[int, str]]:
    """(line, module) of every import of convnet in a module, at any depth. With the
    package's ``modules``, ``from convnet.a import b`` names the module ``convnet.a.b``
    where that is one (not the package ``convnet.a``)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names
                      if alias.name.split(".")[0] == "convnet"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == "convnet":
            if node.module == "convnet":  # from convnet import data -> convnet.data
                found += [(node.lineno, f"convnet.{alias.name}") for alias in node.names]
            elif modules is not None:
                found += [(node.lineno, f"{node.module}.{alias.name}"
                           if f"{node.module}.{alias.name}" in modules else node.module)
                          for alias in node.names]
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


def import_graph(root: Path) -> dict[str, set[str]]:
    """module -> the package's modules it imports (any depth; packages as ``__init__``)."""
    paths = {module_name(path, root): path for path in root.rglob("*.py")}
    graph = {}
    for module, path in paths.items():
        targets = set()
        for _, target in imported(ast.parse(path.read_text(), str(path)), set(paths)):
            while target not in paths and "." in target:  # convnet.a.b.name -> convnet.a.b
                target = target.rsplit(".", 1)[0]
            targets.add(target)
        graph[module] = targets - {module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every group of modules that import each other in a circle (Tarjan's strongly
    connected components of more than one module), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def listed(architecture: str) -> dict[str, set[str]]:
    """stage -> the modules its row of the stage table names (in backquotes): rows are
    ``| `stage/` | `module`, ... | what it owns |``, the base row's stage ``base``."""
    stages: dict[str, set[str]] = {}
    for line in architecture.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 3:
            continue
        stage = cells[0].strip("`").rstrip("/")
        stages.setdefault(stage, set()).update(re.findall(r"`([\w.]+)`", cells[1]))
    return stages


def unlisted(root: Path, architecture: str) -> list[str]:
    """Modules on disk that their stage's row in the architecture document does not name,
    as ``stage/module`` (a package's ``__init__`` and ``__main__`` need no row)."""
    stages, missing = listed(architecture), []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).with_suffix("")
        if relative.name in ("__init__", "__main__"):
            continue
        stage = "base" if len(relative.parts) == 1 else relative.parts[0]
        if relative.name not in stages.get(stage, set()):
            missing.append(str(relative))
    return missing


def test_no_module_imports_in_a_circle():
    assert cycles(import_graph(SOURCE)) == []


def test_a_circle_is_caught(tmp_path):
    root = tmp_path / "convnet"
    (root / "data").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "data" / "__init__.py").write_text("")
    (root / "data" / "a.py").write_text("from convnet.data import b\n")
    (root / "data" / "b.py").write_text("def f():\n    from convnet.data.c import g\n")
    (root / "data" / "c.py").write_text("import convnet.data.a\n")
    assert cycles(import_graph(root)) == [["convnet.data.a", "convnet.data.b",
                                           "convnet.data.c"]]


def test_architecture_lists_every_module():
    assert unlisted(SOURCE, ARCHITECTURE.read_text()) == []


def test_an_unlisted_module_is_caught(tmp_path):
    root = tmp_path / "convnet"
    (root / "plan").mkdir(parents=True)
    for name in ("__init__.py", "errors.py", "plan/__init__.py", "plan/budget.py",
                 "plan/new.py", "plan/loop.py"):
        (root / name).write_text("")
    table = "| stage | modules | owns |\n| base | `errors` | errors |\n" \
            "| `plan/` | `budget` | plans |\n| `training/` | `loop` | the loop |\n"
    assert unlisted(root, table) == ["plan/loop", "plan/new"]  # loop is another stage's


def test_every_import_points_down_the_stages():
    assert violations(SOURCE) == []


def test_every_module_belongs_to_a_known_stage():
    stages = {stage_of(module_name(path, SOURCE)) for path in SOURCE.rglob("*.py")}
    assert stages <= set(LEVELS), stages - set(LEVELS)


@pytest.mark.parametrize("importer, line, stage", [
    ("training/loop.py", "from convnet.runs.format import write_run", "runs"),
    ("runs/run.py", "from convnet.plan.start import start_of", "plan"),
    ("features/copies.py", "    from convnet.plan import start", "plan"),  # inside a function
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


def long_functions(root: Path, most: int) -> dict[str, int]:
    """``file:function`` -> lines from its ``def`` to its last line (docstring included),
    for every function longer than ``most``."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > most:
                    found[f"{path.relative_to(root)}:{node.name}"] = length
    return found


def test_no_function_is_over_50_lines():
    assert long_functions(SOURCE, 50) == {}


def test_the_functions_that_make_a_run_are_under_40_lines():
    long = long_functions(SOURCE / "make", 39)
    assert {name: length for name, length in long.items()
            if name.split(":")[1] in ("train", "fit", "make_run")} == {}


def test_a_long_function_is_counted_from_def_to_its_last_line(tmp_path):
    body = "\n".join(f"    x{n} = {n}" for n in range(50))
    (tmp_path / "long.py").write_text(f'def f():\n    """Doc."""\n{body}\n\n\ndef g():\n    pass\n')
    assert long_functions(tmp_path, 50) == {"long.py:f": 52}
