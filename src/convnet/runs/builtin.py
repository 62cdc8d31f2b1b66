"""Built-in runs: trained networks that come with convnet, usable wherever a run folder is.

``imagenet`` is EfficientNet-Lite0 with its ImageNet weights (the ``pretrained`` extra),
its 1,000 class names and the preprocessing it was trained with. It is written once as an
ordinary run folder in the cache, so predict, evaluate, explain, summary, export and serve
treat it as any other run. A run folder named ``imagenet`` in the working directory is
used instead, as any run folder is.
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
from convnet.network.efficientnet import SIZES
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

SIDE = SIZES[IMAGENET_ARCH][2]  # the side its weights were trained at
BUILTIN_SOURCE = "builtin:"  # DataInfo.source of every built-in run
SOURCE = f"{BUILTIN_SOURCE}{IMAGENET}"
CENTRE = 0.875  # evaluated on the 224 px centre of a photo resized to 256


def is_builtin(name: str | Path) -> bool:
    """Whether ``name`` names a built-in run: a run folder of that name here comes first."""
    return isinstance(name, str | Path) and str(name) == IMAGENET and \
        not (Path(name) / META).is_file()


def imagenet_preprocess(side: int) -> Preprocess:
    return Preprocess(side, side, 3, "crop", CENTRE)


def _record(weights: bytes, params: int) -> RunRecord:
    side = SIDE
    source = SOURCES[IMAGENET_ARCH]
    return RunRecord(
        spec=build(IMAGENET_ARCH, (side, side, 3), 1000).spec, arch=IMAGENET_ARCH,
        classes=imagenet_classes(), input_shape=(side, side, 3),
        preprocess=imagenet_preprocess(side), normalization=IMAGENET_NORMALIZATION,
        config=TrainConfig(data=IMAGENET, arch=IMAGENET_ARCH), augment=Augment(),
        balance="none", tta="none", speed={},
        data=DataInfo(IMAGENET, SOURCE, source.sha256, 1_281_167, 0, 50_000),
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
    weights = imagenet_weights(IMAGENET_ARCH)
    side = SIDE
    network = build(IMAGENET_ARCH, (side, side, 3), 1000)
    network.load_state_dict(weights)
    data = weights_bytes(network)
    staging = folder.with_name(f".{name}.{os.getpid()}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    write_run(staging, _record(data, network.num_params), data)
    write_json(staging / "README.json", {
        "what": "convnet's built-in 'imagenet' run, made from the pretrained extra",
        "remove": "safe to delete: it is written again when next used"})
    shutil.rmtree(folder, ignore_errors=True)  # a damaged copy
    try:
        staging.rename(folder)
    except OSError:  # another process wrote it first
        shutil.rmtree(staging, ignore_errors=True)
