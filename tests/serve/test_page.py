"""The page in a real browser (Playwright driving Debian's chromium): an uploaded image
shows the API's classes and probabilities, drawing on the pad predicts, a click on a
feature map shows the value `run.explain_at` computes, and a bad file shows a readable
error."""

from __future__ import annotations

import shutil

import httpx
import pytest
from PIL import Image

import convnet

pytest.importorskip("fastapi")
playwright = pytest.importorskip("playwright.sync_api")
pytest.importorskip("uvicorn")

from conftest import serving  # noqa: E402
from convnet.serve.app import create_app  # noqa: E402
from convnet.serve.models import load_served  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def live(tiny_run):
    with serving(create_app(load_served([tiny_run], "torch"))) as url:
        yield url


def _bars(page) -> list[tuple[str, str]]:
    page.wait_for_selector(".bar")
    return page.evaluate("""() => [...document.querySelectorAll('.bar')].map(
        bar => [bar.querySelector('.name').textContent, bar.querySelector('.p').textContent])""")


def test_upload_draw_inside_and_a_bad_file_in_a_real_browser(live, tiny_run, tmp_path):
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

        page.wait_for_timeout(600)  # the drawing's last prediction is in
        page.set_input_files("#file", str(image))  # look inside: one value's arithmetic
        page.wait_for_function(f"lastImage && lastImage.size === {image.stat().st_size}")
        page.wait_for_timeout(800)  # the explanation after the last prediction is drawn
        page.locator(".layer.conv canvas").nth(1).click(position={"x": 30, "y": 20})
        page.wait_for_selector("#value")
        heading = page.text_content("#arith b")
        value = float(page.text_content("#value"))

        page.set_input_files("#file", str(bad))
        page.wait_for_function("document.getElementById('error').textContent.length > 0")
        error = page.text_content("#error")
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        browser.close()
    assert "not an image" in error
    layer, filter_index, y, x = (int(word.strip(",")) for word in heading.split()
                                 if word.strip(",").isdigit())
    expected_value = convnet.load(tiny_run).explain_at(image, layer, y, x, filter_index).value
    assert (layer, filter_index) == (1, 1) and abs(value - expected_value) < 5e-5


def test_the_page_says_unknown_where_the_api_does(trained, tmp_path):
    import numpy as np

    known = convnet.datasets.export(convnet.load(trained.path).own_data(), tmp_path / "known",
                                    split="test", limit=1)[0]
    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (28, 28), dtype=np.uint8)).save(
        noise)
    with serving(create_app(load_served([trained.path], "torch"))) as url:
        said = {path: httpx.post(f"{url}/v1/models/run/predict",
                                 content=path.read_bytes()).json()["unknown"]
                for path in (known, noise)}
        assert said == {known: False, noise: True}
        with playwright.sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--headless=new"])
            page = browser.new_page()
            page.goto(url)
            page.wait_for_function("document.querySelector('#model').options.length > 0")
            for path, unknown in said.items():
                page.evaluate("document.getElementById('bars').innerHTML = ''")
                page.set_input_files("#file", str(path))
                _bars(page)
                assert page.locator("#bars .unknown").count() == int(unknown)
            browser.close()
