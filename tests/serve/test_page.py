"""The page in a real browser (Playwright driving Debian's chromium): an uploaded image
shows the API's classes and probabilities, drawing on the pad predicts, and a bad file shows
a readable error."""

from __future__ import annotations

import shutil
import socket
import threading
import time

import httpx
import pytest
from PIL import Image

pytest.importorskip("fastapi")
playwright = pytest.importorskip("playwright.sync_api")
import uvicorn  # noqa: E402

from convnet.serve.app import create_app  # noqa: E402
from convnet.serve.models import load_served  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def live(tiny_run):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(load_served([tiny_run], "torch")),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _bars(page) -> list[tuple[str, str]]:
    page.wait_for_selector(".bar")
    return page.evaluate("""() => [...document.querySelectorAll('.bar')].map(
        bar => [bar.querySelector('.name').textContent, bar.querySelector('.p').textContent])""")


def test_upload_draw_and_a_bad_file_in_a_real_browser(live, tmp_path):
    image = tmp_path / "x.png"
    Image.new("L", (24, 24), 0).save(image)
    expected = httpx.post(f"{live}/v1/models/tiny/predict?top=10",
                          content=image.read_bytes()).json()
    bad = tmp_path / "bad.png"
    bad.write_text("not a picture at all")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM,
                                         args=["--no-sandbox", "--headless=new"])
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        page.goto(live)
        page.wait_for_function("document.querySelector('#model').options.length > 0")
        page.set_input_files("#file", str(image))
        shown = _bars(page)
        assert [name for name, _ in shown] == list(expected["probabilities"])
        assert [p for _, p in shown] == [f"{p:.2f}" for p in expected["probabilities"].values()]

        page.evaluate("document.getElementById('bars').innerHTML = ''")
        box = page.locator("#pad").bounding_box()
        page.mouse.move(box["x"] + 60, box["y"] + 60)
        page.mouse.down()
        for step in range(1, 12):
            page.mouse.move(box["x"] + 60 + 15 * step, box["y"] + 60 + 15 * step)
        page.mouse.up()
        assert len(_bars(page)) == 2  # both classes, from the drawing

        page.set_input_files("#file", str(bad))
        page.wait_for_function("document.getElementById('error').textContent.length > 0")
        error = page.text_content("#error")
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        browser.close()
    assert "not an image" in error
