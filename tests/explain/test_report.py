"""`convnet report`: the pictures, the self-contained page, and the page rendered in a real
headless Chromium with its images loaded."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import convnet
from convnet.cli import main
from convnet.explain.report import report

pytest.importorskip("matplotlib")
DATA = "shapes:size=16,train=30,test=10"


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "shapes"
    convnet.train(data=DATA, arch="conv6k3-relu-maxpool2-fc", epochs=3, batch_size=16, out=out)
    return out


def _non_blank(path) -> bool:
    with Image.open(path) as image:
        return np.asarray(image.convert("L"), dtype=np.float32).std() > 5


def test_report_writes_the_pictures_and_a_self_contained_page(shapes_run):
    result = report(shapes_run)
    names = [path.name for path in result.files]
    assert names == ["curves.png", "confusion.png", "wrong.png", "reliability.png"]
    assert all(_non_blank(path) for path in result.files)
    with Image.open(shapes_run / "curves.png") as image:
        assert image.size == (900, 350)
    page = result.html.read_text()
    assert len(re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]{100,}"', page)) == 4
    assert "<h2>Probabilities (test split)</h2>" in page  # how honest, before and after
    assert "src=\"http" not in page and "<link" not in page  # nothing fetched from outside
    for name in convnet.datasets.load(DATA).classes:
        assert f"<td>{name}</td>" in page  # the per-class table
    assert "conv6k3" in page and "&quot;epochs&quot;: 3" in page  # summary and config
    assert result.scored_on == "test" and result.evaluation.count == 60


def test_report_command_and_a_bad_run(shapes_run, tmp_path, capsys):
    assert main(["report", str(shapes_run)]) == 0
    assert "report.html" in capsys.readouterr().out
    assert main(["report", str(tmp_path)]) == 1
    assert "error:" in capsys.readouterr().err


def test_training_from_the_cli_draws_the_report(tmp_path, capsys):
    assert main(["train", "--data", DATA, "--arch", "conv4k3-relu-maxpool2-fc", "--epochs",
                 "1", "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "report.html").is_file()
    assert main(["train", "--data", DATA, "--arch", "conv4k3-relu-maxpool2-fc", "--epochs",
                 "1", "--no-report", "--out", str(tmp_path / "quiet")]) == 0
    assert not (tmp_path / "quiet" / "report.html").exists()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                    "(.ci/run installs it)")
def test_the_page_renders_in_headless_chromium_with_its_images_loaded(shapes_run, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    page_path = report(shapes_run).html
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM,
                                         args=["--no-sandbox", "--headless=new"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(page_path.as_uri())
        page.wait_for_load_state("load")
        images = page.evaluate("""() => Array.from(document.images).map(
            image => [image.complete, image.naturalWidth, image.naturalHeight])""")
        title = page.title()
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        browser.close()
    assert len(images) == 4 and all(done and width > 0 for done, width, _ in images)
    assert [width for _, width, _ in images][0] == 900  # curves.png at its real size
    assert title.startswith("convnet run")
    assert _non_blank(tmp_path / "page.png")


def test_the_report_reuses_the_logits_training_returned_for_the_same_images(tmp_path,
                                                                            monkeypatch):
    from convnet.explain.report import _splits
    from convnet.runs.evaluate import Scored
    from convnet.runs.predictor import Predictor

    result = convnet.train(data=DATA, arch="conv6k3-relu-maxpool2-fc", epochs=2,
                           batch_size=16, val_split=0.3, out=tmp_path / "run")
    run = convnet.load(result.path)
    val, test = _splits(run, None)
    assert set(result.scored) == {"validation", "test"}
    for name, split in (("validation", val), ("test", test)):  # against a fresh pass
        torch.testing.assert_close(result.scored[name].logits,
                                   run.predictor.logits(split.images), atol=1e-5, rtol=1e-5)
    passes = []
    original = Predictor.outputs
    monkeypatch.setattr(Predictor, "outputs", lambda self, images, embed=False: (
        passes.append(len(images)), original(self, images, embed))[1])
    fresh = report(result.path)
    assert sorted(passes) == sorted([len(val), len(test)])
    passes.clear()
    reused = report(result.path, known=result.scored)
    assert passes == []  # neither split went through the network again
    assert torch.equal(reused.evaluation.confusion, fresh.evaluation.confusion)
    assert reused.evaluation.loss == pytest.approx(fresh.evaluation.loss, abs=1e-6)
    # logits of other images are not taken for these: the split is scored afresh
    other = {"test": Scored.of(val.images, result.scored["validation"].logits)}
    assert report(result.path, known=other).evaluation.count == len(test)
    assert sorted(passes) == sorted([len(val), len(test)])
