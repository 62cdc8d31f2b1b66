"""`convnet explain`: every picture written, non-blank and of its planned size; the printed
arithmetic; errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import convnet
from conftest import embedded_images
from convnet.cli import main
from convnet.errors import ConvnetError
from convnet.explain.pictures import explain, ranked_maps

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def rgb_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "rgb"
    folder = tmp_path_factory.mktemp("pets")
    rng = np.random.default_rng(0)
    for name, colour in (("cat", (200, 40, 40)), ("dog", (40, 40, 200))):
        (folder / name).mkdir()
        for index in range(12):
            pixels = rng.integers(0, 60, (16, 16, 3)).astype(np.uint8)
            pixels[4:12, 4:12] = colour
            Image.fromarray(pixels).save(folder / name / f"{index}.png")
    convnet.train(data=str(folder), arch="conv4k3p1-relu-maxpool2-conv6k3p1-relu-gap-fc",
                  epochs=2, batch_size=8, out=out)
    return out, folder / "cat" / "0.png"


def _is_picture(path, size=None) -> bool:
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("L"), dtype=np.float32)
        right_size = size is None or image.size == size
    return right_size and pixels.std() > 5  # not one flat colour


def test_explain_writes_every_picture(rgb_run, tmp_path):
    run_path, image = rgb_run
    run = convnet.load(run_path)
    result = explain(run, image, tmp_path / "pictures", cls="dog", top=2)
    names = sorted(path.name for path in result.files)
    gradcams = sorted({f"gradcam-{result.predicted}.png", "gradcam-dog.png"})
    assert names == sorted(["00-input.png", "01-conv4k3p1.png", "02-relu.png",
                            "03-maxpool2.png", "04-conv6k3p1.png", "05-relu.png",
                            "filters.png", "top.png", *gradcams])
    assert [name for name, _ in result.probabilities] in (["cat", "dog"], ["dog", "cat"])
    # sizes: figsize × 100 dpi; a map grid is 1.2 in per tile (8 a row at most), 1 in for
    # the colour bar, 0.5 in for the title
    assert _is_picture(tmp_path / "pictures" / "00-input.png", (300, 330))
    assert _is_picture(tmp_path / "pictures" / "01-conv4k3p1.png", (580, 170))
    assert _is_picture(tmp_path / "pictures" / "04-conv6k3p1.png", (820, 170))
    assert _is_picture(tmp_path / "pictures" / "gradcam-dog.png", (600, 330))
    assert _is_picture(tmp_path / "pictures" / "top.png", (500, 200))
    assert all(_is_picture(path) for path in result.files)


def test_without_a_folder_the_pictures_stay_in_memory_and_show_inline(rgb_run, tmp_path):
    run_path, image = rgb_run
    run = convnet.load(run_path)
    written = explain(run, image, tmp_path / "pictures", top=2)
    kept = explain(run, image, top=2)
    assert not kept.files and [name for name, _ in kept.pictures] == \
        [path.name for path in written.files]
    html = kept._repr_html_()
    assert [picture.size for picture in embedded_images(html)] == \
        [Image.open(path).size for path in written.files]
    assert embedded_images(written._repr_html_())  # written ones show too, read back


def test_the_maps_that_respond_most_come_first_labelled_with_filter_and_strength():
    maps = torch.randn(40, 5, 5)
    shown, indices, strength = ranked_maps(maps, 6)
    means = maps.mean(dim=(1, 2)).numpy()
    assert indices == np.argsort(-means)[:6].tolist()
    assert torch.equal(shown, maps[indices])
    assert np.allclose(strength.numpy(), means[indices])
    every, order, _ = ranked_maps(maps, None)
    assert order == list(range(40)) and torch.equal(every, maps)


def test_explain_draws_only_the_maps_asked_for(rgb_run, tmp_path):
    run_path, image = rgb_run
    explain(convnet.load(run_path), image, tmp_path, maps=2)
    assert Image.open(tmp_path / "04-conv6k3p1.png").size == (340, 170)  # 2 tiles of 6
    assert Image.open(tmp_path / "01-conv4k3p1.png").size == (340, 170)
    with pytest.raises(ConvnetError, match="maps must be a count of at least 1 or 'all'"):
        explain(convnet.load(run_path), image, maps=0)


def test_cli_explain_and_the_printed_arithmetic(rgb_run, tmp_path, capsys):
    run_path, image = rgb_run
    assert main(["explain", str(run_path), str(image), "--out", str(tmp_path / "x")]) == 0
    printed = capsys.readouterr().out
    assert "pictures written to" in printed and len(list((tmp_path / "x").iterdir())) >= 9
    assert main(["explain", str(run_path), str(image), "--at", "4:2,3,1"]) == 0
    printed = capsys.readouterr().out
    run = convnet.load(run_path)
    expected = run.explain_at(image, 4, 2, 3, 1)
    assert f"= {expected.value:.4f}; the layer's real output there: {expected.actual:.4f}" \
        in " ".join(printed.split())
    assert "input channel 0" in printed and "then relu" in printed


def test_explain_errors_are_one_line(rgb_run, capsys):
    run_path, image = rgb_run
    assert main(["explain", str(run_path), str(image), "--maps", "some"]) == 1
    assert "--maps must be a count of at least 1 or 'all'. Received: --maps some." in \
        capsys.readouterr().err
    assert main(["explain", str(run_path), str(image), "--class", "horse"]) == 1
    assert "Unknown class 'horse'. This run's classes: cat, dog." in capsys.readouterr().err
    assert main(["explain", str(run_path), str(image), "--at", "2:0,0"]) == 1
    assert "not a convolution" in capsys.readouterr().err


def test_run_api_returns_tensors(rgb_run):
    run_path, image = rgb_run
    run = convnet.load(run_path)
    maps = run.feature_maps(image)
    assert [tuple(m.shape) for _, m in maps] == [info.out_shape for info in run.network.infos]
    cam = run.gradcam(image, "cat")
    assert cam.shape == (16, 16) and float(cam.min()) >= 0 and float(cam.max()) <= 1
    pixels = run.image(image)
    assert pixels.dtype == torch.uint8 and pixels.shape == (3, 16, 16)
