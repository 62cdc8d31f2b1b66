"""Built-in data: the embedded digits, generated shapes, IDX folders and --data parsing."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from convnet import data as datasets
from convnet.data.idx import read_idx
from convnet.errors import ConvnetError


def test_digits_are_the_shipped_mnist_subset():
    data = datasets.load("digits")
    assert data.input_shape == (28, 28, 1)
    assert (len(data.train), len(data.test)) == (8000, 2000)
    assert data.classes == [str(i) for i in range(10)]
    counts = torch.bincount(torch.cat([data.train.labels, data.test.labels]), minlength=10)
    assert counts.tolist() == [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    assert data.train.images.dtype == torch.uint8


def _write_idx(path, array: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if gz else payload)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_round_trip(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 9, 7), dtype=np.uint8)
    labels = np.arange(12) % 3
    suffix = ".gz" if gz else ""
    _write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", images, gz)
    _write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", labels, gz)
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images[:4], gz)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels[:4], gz)
    data = datasets.load(str(tmp_path))
    assert data.input_shape == (9, 7, 1)
    assert np.array_equal(data.train.images[:, 0].numpy(), images)
    assert data.train.labels.tolist() == labels.tolist()
    assert data.classes == ["0", "1", "2"]
    assert len(data.test) == 4


def test_idx_truncated_file_is_named(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    _write_idx(path, np.zeros((4, 5, 5)), gz=False)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ConvnetError, match="is truncated or padded"):
        read_idx(path)


def test_idx_not_idx(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"<html>nope</html>")
    with pytest.raises(ConvnetError, match="is not an IDX file"):
        read_idx(path)


def test_shapes_are_deterministic_under_a_seed():
    a = datasets.load("shapes:size=16,train=5,test=2,seed=3")
    b = datasets.load("shapes", size=16, train=5, test=2, seed=3)
    c = datasets.load("shapes:size=16,train=5,test=2,seed=4")
    assert torch.equal(a.train.images, b.train.images)
    assert a.fingerprint() == b.fingerprint()
    assert not torch.equal(a.train.images, c.train.images)
    assert a.train.images.shape == (30, 1, 16, 16)
    assert a.classes == ["x", "o", "plus", "square", "triangle", "line"]


def test_x_or_not_x_has_two_classes_and_draws_something():
    data = datasets.load("x-or-not-x:size=7,train=10,test=3")
    assert data.classes == ["x", "not-x"]
    assert data.input_shape == (7, 7, 1)
    # Every image has a stroke: its brightest pixel is well above the noise floor.
    assert (data.train.images.flatten(1).max(1).values > 100).all()


def test_stratified_split_keeps_every_class():
    data = datasets.load("shapes:size=8,train=10,test=1")
    rest, held = data.train.split_stratified(0.2, seed=0)
    assert torch.bincount(held.labels).tolist() == [2] * 6
    assert len(rest) + len(held) == len(data.train)
    assert rest.split_stratified(0.0, seed=0) == (rest, None)


@pytest.mark.parametrize("arg, message", [
    ("nope", "data must be a built-in dataset (digits, shapes, x-or-not-x, mnist, "
     "fashion-mnist, cifar10) or an existing folder. Received: data='nope'."),
    ("digit", "Did you mean 'digits'?"),
    ("shapes:size=abc", "data='shapes': option size must be an integer. Received: 'abc'."),
    ("shapes:colour=3", "data='shapes': options are written key=value with keys size, train, "
     "test, seed. Received: 'colour=3'."),
    ("shapes:size=3", "shapes: size must be at least 5 pixels. Received: size=3."),
    ("/no/such/folder", "data='/no/such/folder' does not exist."),
])
def test_bad_data_arguments(arg, message):
    with pytest.raises(ConvnetError) as caught:
        datasets.load(arg)
    assert message in str(caught.value)


def test_folder_without_idx_files(tmp_path):
    with pytest.raises(ConvnetError, match="needs at least 2 classes"):
        datasets.load(str(tmp_path))


def test_a_built_in_name_wins_over_a_folder_of_that_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "digits").mkdir()
    assert len(datasets.load("digits").train) == 8000
    with pytest.raises(ConvnetError, match="needs at least 2 classes"):
        datasets.load("./digits")


def test_a_split_of_other_pixels_or_labels_is_refused_naming_what_it_got():
    from convnet.data.dataset import Split

    with pytest.raises(ConvnetError, match=r"images must be uint8 of shape \(N, C, H, W\)\. "
                       r"Received: images of dtype torch.float32 and shape \(2, 1, 4, 4\)\."):
        Split(torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ConvnetError, match=r"one label per image, shape \(2,\)\. Received: "
                       r"labels of shape \(3,\)\."):
        Split(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(3, dtype=torch.long))


def test_a_contact_sheet_of_no_images_is_refused(tmp_path):
    from convnet.data.sheet import contact_sheet

    with pytest.raises(ConvnetError, match=r"at least one image .* Received: images of shape "
                       r"\(0, 3, 8, 8\)\."):
        contact_sheet(torch.zeros(0, 3, 8, 8, dtype=torch.uint8), [], tmp_path / "sheet.png")
