"""examples/the-texts.ipynb runs top to bottom in a kernel of this environment (its cells
assert the values the texts state), and nbconvert's static HTML of it shows every object's
display with its pictures."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest

from conftest import embedded_images

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
nbconvert = pytest.importorskip("nbconvert")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "the-texts.ipynb"
# every object a user holds in the notebook, by the class its display's outer <div> has
SHOWN = ("numbers", "summary", "dataset", "data-check", "run", "evaluation", "explanation",
         "predictions", "prediction")


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The notebook run in a kernel of this very Python (a kernelspec written for the test,
    so that `python` on PATH does not matter), and the seconds it took."""
    kernels = tmp_path_factory.mktemp("jupyter") / "kernels" / "convnet-test"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "convnet test", "language": "python"}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(kernels.parent.parent))
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        started = time.perf_counter()
        nbclient.NotebookClient(notebook, timeout=600, kernel_name="convnet-test",
                                resources={"metadata": {"path": str(NOTEBOOK.parent)}}
                                ).execute()
    return notebook, time.perf_counter() - started


def test_the_notebook_runs_top_to_bottom_without_an_error(executed):
    notebook, seconds = executed
    outputs = [output for cell in notebook.cells if cell.cell_type == "code"
               for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert not [output for output in outputs if output.output_type == "stream"
                and output.name == "stderr" and "Warning" in output.text]
    assert seconds < 180  # the bound on 2 CPU cores


def test_its_static_html_shows_each_object_with_its_pictures(executed, tmp_path):
    notebook, _ = executed
    html, _ = nbconvert.HTMLExporter().from_notebook_node(notebook)
    found = set(re.findall(r'class="convnet convnet-([\w-]+)"', html))
    assert set(SHOWN) <= found
    assert "15,004,000 weights" in html  # the texts' dense network, in the summary
    assert "unknown: unlike the images" in html  # the letter X shown to the digits run
    pictures = embedded_images(html)
    assert len(pictures) >= 80 and all(min(p.size) >= 40 for p in pictures)
    (tmp_path / "the-texts.html").write_text(html)


def test_the_committed_notebook_has_no_outputs():
    """Outputs would go stale with the code; CI makes them fresh each time."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
