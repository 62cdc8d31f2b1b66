"""Screenshots of examples/the-texts.ipynb as nbconvert renders it, in headless chromium:
docs/notebook-texts.png (the first steps of the texts) and docs/notebook-run.png (a run and
what is inside it).

    python docs/notebook_screenshot.py      # needs the test extra and Debian's chromium
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "the-texts.ipynb"
WIDTH = 1000


def _page_of(heading: str):
    return f"h2:has-text('{heading}')"


def main() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    html, _ = HTMLExporter().from_notebook_node(notebook)
    page_file = Path(tempfile.mkdtemp()) / "the-texts.html"
    page_file.write_text(html)
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=shutil.which("chromium"),
                                         args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": WIDTH, "height": 1200})
        page.goto(page_file.as_uri())
        for name, first, last in (("notebook-texts.png", "1. An image", "3. The output size"),
                                  ("notebook-run.png", "6. Training", "7. Inside")):
            top = page.locator(_page_of(first)).bounding_box()["y"]
            bottom = page.locator(_page_of(last)).bounding_box()["y"]
            page.screenshot(path=str(ROOT / "docs" / name), full_page=True,
                            clip={"x": 0, "y": top - 10, "width": WIDTH,
                                  "height": bottom - top})
        browser.close()
    print("wrote docs/notebook-texts.png and docs/notebook-run.png", file=sys.stderr)


if __name__ == "__main__":
    main()
