"""Data held in memory at another size: the pixels against Pillow's resize of the same
image (what a file goes through), the aspect ratio kept by crop or pad, and ``image_size``
meaning the same for built-in data as for a folder, through training and back."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

import convnet
from convnet import datasets
from convnet.data.preprocess import Preprocess
from convnet.data.rescale import resized, sized


def _pil(array: np.ndarray, size: tuple[int, int], resize: str = "crop") -> np.ndarray:
    """Pillow's bilinear resize of a (H, W) or (H, W, C) uint8 array to ``size`` (h, w)."""
    fit = ImageOps.fit if resize == "crop" else ImageOps.pad
    image = fit(Image.fromarray(array), size[::-1], Image.Resampling.BILINEAR)
    return np.asarray(image).astype(int)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [(24, 24), (13, 13), (40, 40)])
def test_square_images_match_pillows_bilinear_resize(channels, size):
    rng = np.random.default_rng(0)
    hwc = rng.integers(0, 256, (64, 64, channels), dtype=np.uint8)
    ours = resized(torch.from_numpy(hwc).permute(2, 0, 1)[None], size)[0]  # (C, h, w)
    theirs = _pil(hwc[..., 0] if channels == 1 else hwc, size)
    got = ours.permute(1, 2, 0).numpy().astype(int)
    got = got[..., 0] if channels == 1 else got
    assert got.shape == theirs.shape
    assert np.abs(got - theirs).max() <= 1  # rounding


@pytest.mark.parametrize("resize", ["crop", "pad"])
def test_the_aspect_ratio_is_kept_by_crop_or_pad_as_for_files(resize):
    rng = np.random.default_rng(1)
    wide = rng.integers(0, 256, (30, 60), dtype=np.uint8)
    ours = resized(torch.from_numpy(wide)[None, None], (20, 20), resize)[0, 0].numpy()
    theirs = _pil(wide, (20, 20), resize)
    # Pillow places the crop or the letterbox to within a pixel of ours; most pixels agree
    assert (np.abs(ours.astype(int) - theirs) <= 2).mean() > 0.9
    if resize == "pad":  # black bars above and below
        assert ours[:4].max() == 0 and ours[-4:].max() == 0 and ours[10].max() > 0


def test_channels_last_images_stay_channels_last():
    images = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8)
    images = images.contiguous(memory_format=torch.channels_last)
    for size, resize in (((8, 8), "crop"), ((6, 12), "crop"), ((6, 12), "pad")):
        out = resized(images, size, resize)
        assert out.shape == (3, 3, *size) and out.dtype == torch.uint8
        assert out.is_contiguous(memory_format=torch.channels_last)


def test_built_in_data_is_resampled_to_image_size_or_a_preprocess():
    own = datasets.load("shapes:size=12,train=4,test=2")
    small = datasets.load("shapes:size=12,train=4,test=2", image_size=8)
    assert own.input_shape == (12, 12, 1) and small.input_shape == (8, 8, 1)
    assert torch.equal(small.train.images, resized(own.train.images, (8, 8)))
    assert torch.equal(small.test.labels, own.test.labels)
    by_preprocess = datasets.load("shapes:size=12,train=4,test=2",
                                  preprocess=Preprocess(8, 8, 1))
    assert torch.equal(by_preprocess.train.images, small.train.images)
    assert sized(own, 12) is own and sized(own) is own  # nothing to do
    # a colour network's run reads grayscale data back replicated, as it trained on it
    colour = datasets.load("shapes:size=12,train=4,test=2", preprocess=Preprocess(8, 8, 3))
    assert colour.input_shape == (8, 8, 3)
    assert torch.equal(colour.train.images[:, 2], small.train.images[:, 0])


def test_a_run_on_built_in_data_at_image_size_reads_its_data_back_at_it(tmp_path):
    result = convnet.train(data="x-or-not-x:size=20,train=20,test=6", image_size=12,
                           arch="conv4k3-relu-maxpool2-fc", epochs=1, out=tmp_path / "run")
    run = convnet.load(result.path)  # read back from its files
    assert run.network.input_shape == (12, 12, 1)
    assert run.own_data().input_shape == (12, 12, 1)
    evaluation = run.evaluate(run.own_data().test)
    assert 0.0 <= evaluation.accuracy <= 1.0


def test_a_size_whose_images_would_not_fit_in_memory_is_refused_naming_the_figures(
        monkeypatch):
    from convnet.data import rescale
    from convnet.errors import ConvnetError

    own = datasets.load("shapes:size=12,train=4,test=2")  # 36 images
    monkeypatch.setattr(rescale, "available_bytes", lambda device: 36 * 100 * 100)
    with pytest.raises(ConvnetError, match=r"image_size=96 makes the 36 images of "
                       r"data='shapes' take 331\.8 KB in memory, and 360\.0 KB is available"):
        sized(own, 96)
    assert sized(own, 64).input_shape == (64, 64, 1)  # 147 KB: within half of it
