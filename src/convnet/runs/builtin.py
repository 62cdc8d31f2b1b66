"""Built-in runs: trained networks that come with convnet, usable wherever a run folder is.

``imagenet`` is EfficientNet-Lite0 with its ImageNet weights, its 1,000 class names and
the preprocessing it was trained with; ``imagenet-lite1`` and ``imagenet-lite2`` are the
larger Lite1 (240 px) and Lite2 (260 px), from the ``pretrained`` extra. Each is written
once as an ordinary run folder in the cache, so predict, evaluate, explain, summary,
export and serve treat it as any other run. A run folder of the same name in the working
directory is used instead, as any run folder is.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch

from convnet.atomic import write_json
from convnet.data.augment import Augment
from convnet.data.cache import cache_dir
from convnet.data.preprocess import Preprocess
from convnet.errors import RunError
from convnet.network import build
from convnet.runs.format import (
    META,
    DataInfo,
    Metrics,
    RunRecord,
    read_run,
    sha256,
    weights_bytes,
    write_run,
)
from convnet.training.config import TrainConfig
from convnet.training.pretrained import (
    IMAGENET,
    IMAGENET_ARCH,
    IMAGENET_NORMALIZATION,
    SOURCES,
    imagenet_classes,
    imagenet_ids,
    imagenet_weights,
)

BUILTINS = {IMAGENET: IMAGENET_ARCH, "imagenet-lite1": "efficientnet-lite1",
            "imagenet-lite2": "efficientnet-lite2"}  # name -> the network it is
BUILTIN_SOURCE = "builtin:"  # DataInfo.source of every built-in run
# pixels around the centre: each network is evaluated on side / (side + MARGIN) of a photo
# (Lite0: the 224 px centre of a photo resized to 256), as its weights were
MARGIN = 32


def is_builtin(name: str | Path) -> bool:
    """Whether ``name`` names a built-in run: a run folder of that name here comes first."""
    return isinstance(name, str | Path) and str(name) in BUILTINS and \
        not (Path(name) / META).is_file()


def imagenet_preprocess(side: int) -> Preprocess:
    return Preprocess(side, side, 3, "crop", side / (side + MARGIN))


def _record(name: str, weights: bytes, params: int) -> RunRecord:
    arch = BUILTINS[name]
    source = SOURCES[arch]
    side = source.side
    return RunRecord(
        spec=build(arch, (side, side, 3), 1000).spec, arch=arch,
        classes=imagenet_classes(), input_shape=(side, side, 3),
        preprocess=imagenet_preprocess(side), normalization=IMAGENET_NORMALIZATION,
        config=TrainConfig(data=IMAGENET, arch=arch), augment=Augment(),
        balance="none", tta="none", speed={},
        data=DataInfo(IMAGENET, f"{BUILTIN_SOURCE}{name}", source.sha256, 1_281_167, 0,
                      50_000),
        validation=None, params=params, metrics=Metrics(0, None, None, None),
        weights_sha256=sha256(weights), class_ids=imagenet_ids())


def read_builtin(name: str) -> tuple[Path, RunRecord, dict[str, torch.Tensor]]:
    """The folder, record and weights of a built-in run, read once; the folder is written
    into the cache first when it is missing or damaged.

    Raises:
        ConvnetError: without the ``pretrained`` extra (one line naming it).
    """
    folder = cache_dir("pretrained") / name
    if (folder / META).is_file():
        try:
            return folder, *read_run(folder)  # whole and matching its SHA-256
        except RunError:
            pass  # a damaged copy is written again below
    _write(folder, name)
    return folder, *read_run(folder)


def _write(folder: Path, name: str) -> None:
    """Stage the run beside ``folder`` and rename it into place (no half-written run)."""
    arch = BUILTINS[name]
    weights = imagenet_weights(arch)
    side = SOURCES[arch].side
    network = build(arch, (side, side, 3), 1000)
    network.load_state_dict(weights)
    data = weights_bytes(network)
    staging = folder.with_name(f".{name}.{os.getpid()}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    write_run(staging, _record(name, data, network.num_params), data)
    write_json(staging / "README.json", {
        "what": f"convnet's built-in {name!r} run, made from {SOURCES[arch].package}",
        "remove": "safe to delete: it is written again when next used"})
    shutil.rmtree(folder, ignore_errors=True)  # a damaged copy
    try:
        staging.rename(folder)
    except OSError:  # another process wrote it first
        shutil.rmtree(staging, ignore_errors=True)
