"""Runs at the small and the absurd end: one image per class, images too small for the
preset `auto` picks, sizes no memory holds, and mistyped names."""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image

import convnet
from convnet.errors import ConvnetError, RunError, SpecError
from convnet.explain import report as report_module


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVNET_CACHE", str(tmp_path / "cache"))


def _folder(root, size: int, per_class: int = 1):
    for index, colour in enumerate([(250, 20, 20), (20, 20, 250)]):
        folder = root / f"class{index}"
        folder.mkdir(parents=True)
        for n in range(per_class):
            Image.new("RGB", (size, size), colour).save(folder / f"{n}.png")
    return root


def test_one_image_per_class_trains_without_validation_and_gets_a_report(tmp_path,
                                                                         monkeypatch):
    data = _folder(tmp_path / "tiny", 12)
    monkeypatch.chdir(tmp_path)  # a relative --data, recorded so that it loads from anywhere
    result = convnet.train(data="tiny", arch="conv4k3-relu-fc", epochs=2, batch_size=128,
                           out=tmp_path / "run")
    assert len(result.history) == 2 and result.test is None
    assert all(epoch.val_acc is None for epoch in result.history)
    record = json.loads((tmp_path / "run" / "model.json").read_text())
    assert record["validation"]["source"] == "none"
    assert record["config"]["data"] == str(data)
    monkeypatch.chdir(tmp_path / "run")
    pytest.importorskip("matplotlib")
    written = report_module.report(tmp_path / "run")
    assert written.evaluation is None and [p.name for p in written.files] == ["curves.png"]
    assert "nothing was scored" in written.html.read_text()


def test_one_pixel_images_train_with_the_planned_network(tmp_path):
    data = _folder(tmp_path / "dots", 1, per_class=2)
    result = convnet.train(data=str(data), epochs=1, out=tmp_path / "run")
    assert result.run.record.input_shape == (1, 1, 3)
    assert result.run.record.spec.endswith("gap-fc2")  # global pooling: fits any size


def test_a_mistyped_preset_is_suggested():
    with pytest.raises(SpecError, match="arch='lenett' is neither a preset nor a spec. Did "
                                        "you mean 'lenet'?"):
        convnet.build("lenett", "28x28x1", 10)
    with pytest.raises(SpecError, match="Did you mean 'maxpool'"):  # a spec keeps its message
        convnet.build("conv8k3-maxpol2-fc", "28x28x1", 10)


def test_a_mistyped_run_folder_is_suggested(tiny_run, tmp_path):
    typo = tiny_run.parent / (tiny_run.name + "x")
    with pytest.raises(RunError, match=f"Did you mean '{tiny_run}'"):
        convnet.load(typo)


def test_a_network_whose_weights_no_memory_holds_is_refused_before_allocating():
    with pytest.raises(ConvnetError) as caught:
        convnet.summarize("conv8k3-relu-fc", input_shape="100000x100000x3", num_classes=10)
    message = str(caught.value)
    # conv 8×(3·3·3)+8 = 224, then fc 8·99,998²·10 + 10: counted by hand, not by the code
    assert message.startswith("conv8k3-relu-fc10 on 100000×100000×3 input has "
                              "799,968,000,554 weights (3.2 TB) and this machine has ")
    assert "Use smaller images (image_size)" in message


def test_an_everything_right_run_says_so_instead_of_a_blank_gallery(tiny_run, tmp_path,
                                                                    monkeypatch):
    pytest.importorskip("matplotlib")
    run = shutil.copytree(tiny_run, tmp_path / "run")  # the shared run stays as trained
    titles = []
    real = report_module.plots.gallery
    monkeypatch.setattr(report_module, "_wrong", lambda run, split, logits=None: [])
    monkeypatch.setattr(report_module.plots, "gallery",
                        lambda items, path, title: titles.append(title) or
                        real(items, path, title))
    report_module.report(run)
    assert titles and titles[0].startswith("No validation image was misclassified: all ")
