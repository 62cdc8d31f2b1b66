"""`convnet explain`: the pictures of one prediction, written as PNGs into a folder."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from convnet.explain import plots
from convnet.network.shapes import LayerInfo, format_shape
from convnet.network.spec import CONVOLUTIONS, Activation, Pool, Whiten
from convnet.runs.run import Run

_MAP_LAYERS = (*CONVOLUTIONS, Whiten, Activation, Pool)  # the layers whose maps the texts show
EVERY_LAYER_UP_TO = 24  # deeper networks get one picture per stage instead of per layer


@dataclass
class Explanation:
    predicted: str
    probabilities: list[tuple[str, float]]  # the top classes, most likely first
    files: list[Path] = field(default_factory=list)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "class"


def explain(run: Run, image: str | Path | torch.Tensor, out: str | Path,
            cls: str | None = None, top: int = 5) -> Explanation:
    """Write the input, every conv/activation/pool layer's feature maps (per stage for a
    deep network: `_drawn`), the first layer's
    filters, Grad-CAM for the predicted class (and ``cls``) and the top-``top``
    probabilities as PNGs into ``out``.

    Raises:
        ConvnetError: for an unreadable image, an unknown class, or missing matplotlib.
    """
    out = Path(out)
    pixels = run.image(image)  # (C, H, W) uint8, as the network sees it
    if cls is not None:
        run.class_index(cls, pixels)  # an unknown class fails here, before any file is written
    row = run.predict(pixels)[0]  # (classes,)
    order = row.argsort(descending=True).tolist()
    ranked = [(run.classes[i], float(row[i])) for i in order[: max(1, top)]]
    result = Explanation(ranked[0][0], ranked)
    result.files.append(plots.input_image(pixels, out / "00-input.png",
                                          "the input as the model sees it"))
    maps_of = [(info, maps) for info, maps in run.feature_maps(pixels)
               if isinstance(info.layer, _MAP_LAYERS) and maps.dim() == 3]
    for info, maps in _drawn(maps_of):
        where = f"layer {info.position} {info.name}"
        result.files.append(plots.feature_maps(
            maps, out / f"{info.position:02d}-{_slug(info.name)}.png",
            f"{where}: {format_shape(info.out_shape)} (one map per filter, one colour "
            "scale)"))
    first = next((i for i, info in enumerate(run.network.infos)
                  if isinstance(info.layer, (*CONVOLUTIONS, Whiten))), None)
    if first is not None:
        info = run.network.infos[first]
        weights = run.network.body[first].weight  # (F, C, k, k)
        kind = "whitening filters computed from the training images" if isinstance(
            info.layer, Whiten) else "learned filters"
        result.files.append(plots.filters(
            weights, out / "filters.png",
            f"layer {info.position} {info.name}: {weights.shape[0]} {kind} "
            f"{weights.shape[2]}×{weights.shape[3]}×{weights.shape[1]}"))
    for name in dict.fromkeys([result.predicted] + ([cls] if cls else [])):
        index = run.class_index(name, pixels)
        cam = run.gradcam(pixels, index)
        result.files.append(plots.gradcam(
            pixels, cam, out / f"gradcam-{_slug(name)}.png",
            f"Grad-CAM for '{name}' (p = {float(row[index]):.2f})"))
    result.files.append(plots.top_k(ranked, out / "top.png", f"top {len(ranked)} classes"))
    return result


def _drawn(maps: list[tuple[LayerInfo, torch.Tensor]]) -> list[tuple[LayerInfo, torch.Tensor]]:
    """Every layer's maps for a network of a few layers; for a deep one (EfficientNet has
    over a hundred), the first layer and the last of each stage: each map size's last."""
    if len(maps) <= EVERY_LAYER_UP_TO:
        return maps
    kept = [maps[0]]
    for here, after in zip(maps, maps[1:] + [None]):
        if after is None or tuple(after[1].shape[1:]) != tuple(here[1].shape[1:]):
            kept.append(here)
    return list({id(info): (info, tensor) for info, tensor in kept}.values())
