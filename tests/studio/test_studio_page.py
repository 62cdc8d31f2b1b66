"""The studio page in a real browser (Playwright driving Debian's chromium): make a project
with two classes, add images to each, train, watch the curve and the bar move, predict.

With CONVNET_SCREENSHOTS=DIR set, the page is also saved as PNGs in DIR (docs/ has them).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest
from PIL import Image

import convnet

pytest.importorskip("fastapi")
playwright = pytest.importorskip("playwright.sync_api")
pytest.importorskip("uvicorn")

from conftest import serving  # noqa: E402
from convnet.studio.app import create_app  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
SHOTS = os.environ.get("CONVNET_SCREENSHOTS")


@pytest.fixture
def live(tmp_path):
    with serving(create_app(tmp_path / "ws"), stop_seconds=30) as url:  # a job may be ending
        yield url


def _digit_files(folder: Path, digit: int, count: int) -> list[str]:
    split = convnet.datasets.load("digits").train
    folder.mkdir(parents=True)
    paths = []
    for row in (split.labels == digit).nonzero().flatten()[:count].tolist():
        path = folder / f"{row}.png"
        Image.fromarray(split.images[row, 0].numpy()).save(path)
        paths.append(str(path))
    return paths


def _shot(page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / name), full_page=True)


def test_make_classes_add_images_train_and_predict_in_a_real_browser(live, tmp_path):
    threes = _digit_files(tmp_path / "3", 3, 40)
    sevens = _digit_files(tmp_path / "7", 7, 40)
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM,
                                         args=["--no-sandbox", "--headless=new"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(live)
        page.fill("#new-name", "digits")
        page.click("#create")
        for name in ("three", "seven"):
            page.fill("#class-name", name)
            page.click("#add-class")
            page.wait_for_selector(f".class[data-class='{name}']")
        page.set_input_files(".class[data-class='three'] [data-files]", threes)
        page.wait_for_function("document.querySelector(\".class[data-class='three'] "
                               ".count\").textContent === '40 images'")
        page.wait_for_function("[...document.querySelectorAll(\".class[data-class='three'] "
                               ".thumbs img\")].filter(i => i.complete && i.naturalWidth)"
                               ".length === 8")  # the first images, as thumbnails
        page.set_input_files(".class[data-class='seven'] [data-files]", sevens)
        page.wait_for_function("document.querySelector(\".class[data-class='seven'] "
                               ".count\").textContent === '40 images'")
        page.fill("#epochs", "12")
        page.click("#plan")
        page.wait_for_function("document.querySelector('#planned').textContent"
                               ".startsWith('planned from 80')")
        page.click("#train")
        page.wait_for_function("document.querySelector('#state').dataset.state === "
                               "'running' && document.querySelector('#progress').value > 0",
                               timeout=60_000)
        _shot(page, "studio-training.png")
        page.wait_for_function("document.querySelector('#state').dataset.state === "
                               "'finished'", timeout=120_000)
        drawn = page.evaluate("""() => { const c = document.getElementById('curves');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let blue = 0, green = 0;
            for (let i = 0; i < d.length; i += 4) {
              if (d[i + 2] > 200 && d[i] < 80) blue++;
              if (d[i + 1] > 140 && d[i] < 60 && d[i + 2] < 120) green++; }
            return [blue, green]; }""")
        assert min(drawn) > 50, drawn  # both curves are on the canvas
        assert page.evaluate("document.querySelector('#progress').value") == 12
        page.wait_for_selector("#pictures img[alt='confusion.png']")
        job = httpx.get(f"{live}/v1/jobs").json()[-1]
        expected = httpx.post(f"{live}/v1/models/{job['id']}/predict?top=5",
                              content=Path(threes[0]).read_bytes()).json()
        page.set_input_files("#try-file", threes[0])
        page.wait_for_selector("#answer .bar")
        shown = page.evaluate("() => [...document.querySelectorAll('#answer .bar')].map("
                              "b => b.textContent.replace(/\\s+/g, ' ').trim())")
        assert [line.split()[0] for line in shown] == [t["class"] for t in expected["top"]]
        _shot(page, "studio-finished.png")
        browser.close()


def test_the_webcam_button_adds_a_photo_to_the_chosen_class(live):
    with playwright.sync_playwright() as driver:  # chromium's fake camera: a test pattern
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--headless=new", "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream"])
        page = browser.new_context(permissions=["camera"]).new_page()
        page.goto(live)
        page.fill("#new-name", "cam")
        page.click("#create")
        page.fill("#class-name", "me")
        page.click("#add-class")
        page.wait_for_selector(".class[data-class='me']")
        page.click("#camera")
        page.wait_for_function("document.querySelector('#video').videoWidth > 0",
                               timeout=20_000)
        page.select_option("#shot-class", "me")
        page.click("#shoot")
        page.wait_for_function("document.querySelector(\".class[data-class='me'] .count\")"
                               ".textContent === '1 image'", timeout=20_000)
        browser.close()
    saved = httpx.get(f"{live}/v1/datasets/cam").json()
    assert saved["counts"]["train"] == {"me": 1}
