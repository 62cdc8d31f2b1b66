"""`convnet explain`: the pictures of one prediction, written as PNGs into a folder, or
kept in memory to show inline in a notebook."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import torch

from convnet import display, plots
from convnet.errors import ConvnetError
from convnet.network.shapes import LayerInfo, format_shape
from convnet.network.spec import CONVOLUTIONS, Activation, Pool, Whiten
from convnet.runs.run import Run

_MAP_LAYERS = (*CONVOLUTIONS, Whiten, Activation, Pool)  # the layers whose maps the texts show
EVERY_LAYER_UP_TO = 24  # deeper networks get one picture per stage instead of per layer
# maps drawn per layer: a layer of EfficientNet's has up to 1,280, and 240 of them filled
# a 1080×3660 picture of stamps; the ones that respond most to this image say more
MAPS_SHOWN = 32


@dataclass
class Explanation:
    """The pictures of one prediction: ``files`` where written to a folder, else
    ``pictures`` in memory as (name, PNG bytes); a notebook shows them inline either way."""

    predicted: str
    probabilities: list[tuple[str, float]]  # the top classes, most likely first
    files: list[Path] = field(default_factory=list)
    pictures: list[tuple[str, bytes]] = field(default_factory=list)

    def __repr__(self) -> str:
        shown = ", ".join(f"{p:.2f} {name}" for name, p in self.probabilities)
        return f"Explanation({shown}; {len(self.files) + len(self.pictures)} pictures)"

    def _repr_html_(self) -> str:
        named = [(path.name, path.read_bytes()) for path in self.files if path.is_file()]
        images = "".join(f"<div>{display.image(png, name)}</div>"
                         for name, png in named + self.pictures)
        return display.block("explanation", f"predicted: {self.predicted}",
                             display.bars(self.probabilities), images)

    def _add(self, out: Path | None, name: str, draw: Callable[[Any], Any]) -> None:
        """Draw one picture into ``out``/``name``, or into memory without a folder."""
        if out is not None:
            self.files.append(draw(out / name))
            return
        buffer: BinaryIO = io.BytesIO()
        draw(buffer)
        self.pictures.append((name, buffer.getvalue()))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "class"


def explain(run: Run, image: str | Path | torch.Tensor, out: str | Path | None = None,
            cls: str | None = None, top: int = 5, maps: int | str = MAPS_SHOWN) -> Explanation:
    """The input, every conv/activation/pool layer's feature maps (per stage for a deep
    network: `_drawn`), the first layer's filters, Grad-CAM for the predicted class (and
    ``cls``) and the top-``top`` probabilities, as PNGs written into ``out`` (None: kept in
    memory; a notebook shows them inline).

    ``maps``: per layer, the maps that respond most to this image (highest mean
    activation), strongest first, each labelled with its filter and strength; ``"all"``:
    every map, in filter order.

    Raises:
        ConvnetError: for an unreadable image, an unknown class, a bad ``maps``, or missing
            matplotlib.
    """
    out = None if out is None else Path(out)
    shown = _maps_shown(maps)
    pixels = run.image(image)  # (C, H, W) uint8, as the network sees it
    if cls is not None:
        run.class_index(cls, pixels)  # an unknown class fails here, before any file is written
    row = run.predict(pixels)[0]  # (classes,)
    order = row.argsort(descending=True).tolist()
    ranked = [(run.classes[i], float(row[i])) for i in order[: max(1, top)]]
    result = Explanation(ranked[0][0], ranked)
    result._add(out, "00-input.png", lambda target: plots.input_image(
        pixels, target, "the input as the model sees it"))
    maps_of = [(info, tensor) for info, tensor in run.feature_maps(pixels)
               if isinstance(info.layer, _MAP_LAYERS) and tensor.dim() == 3]
    for info, tensor in _drawn(maps_of):
        _add_maps(result, out, info, tensor, shown)
    _add_filters(result, out, run)
    for name in dict.fromkeys([result.predicted] + ([cls] if cls else [])):
        index = run.class_index(name, pixels)
        cam = run.gradcam(pixels, index)
        result._add(out, f"gradcam-{_slug(name)}.png", lambda target, cam=cam, name=name,
                    index=index: plots.gradcam(pixels, cam, target, f"Grad-CAM for '{name}' "
                                               f"(p = {float(row[index]):.2f})"))
    result._add(out, "top.png", lambda target: plots.top_k(ranked, target,
                                                            f"top {len(ranked)} classes"))
    return result


def _maps_shown(maps: int | str) -> int | None:
    """``maps`` as a count (None: all)."""
    if maps == "all":
        return None
    if isinstance(maps, bool) or not isinstance(maps, int) or maps < 1:
        raise ConvnetError("maps must be a count of at least 1 or 'all'. Received: "
                           f"maps={maps!r}.")
    return maps


def ranked_maps(maps: torch.Tensor, count: int | None) -> tuple[torch.Tensor, list[int],
                                                                 torch.Tensor]:
    """(the ``count`` maps (K, h, w) that respond most, strongest first; their filter
    indices; their strengths, the mean of each map). None, or a count of at least K: all
    of them in filter order."""
    strength = maps.float().mean(dim=(1, 2))  # (K,)
    if count is None or count >= maps.shape[0]:
        indices = list(range(maps.shape[0]))
    else:
        indices = strength.argsort(descending=True)[:count].tolist()
    return maps[indices], indices, strength[indices]


def _add_maps(result: Explanation, out: Path | None, info: LayerInfo, tensor: torch.Tensor,
              shown: int | None) -> None:
    kept, indices, strength = ranked_maps(tensor, shown)
    total = tensor.shape[0]
    what = "one map per filter" if len(indices) == total else \
        f"the {len(indices)} of {total} maps that respond most, strongest first"
    labels = [f"{i}" if len(indices) == total else f"#{i} {s:.2g}"
              for i, s in zip(indices, strength.tolist())]
    result._add(out, f"{info.position:02d}-{_slug(info.name)}.png", lambda target:
                plots.feature_maps(kept, target, f"layer {info.position} {info.name}: "
                                   f"{format_shape(info.out_shape)} ({what}, one colour "
                                   "scale)", labels))


def _add_filters(result: Explanation, out: Path | None, run: Run) -> None:
    first = next((i for i, info in enumerate(run.network.infos)
                  if isinstance(info.layer, (*CONVOLUTIONS, Whiten))), None)
    if first is None:
        return
    info = run.network.infos[first]
    weights = run.network.body[first].weight  # (F, C, k, k)
    kind = "whitening filters computed from the training images" if isinstance(
        info.layer, Whiten) else "learned filters"
    result._add(out, "filters.png", lambda target: plots.filters(
        weights, target, f"layer {info.position} {info.name}: {weights.shape[0]} {kind} "
        f"{weights.shape[2]}×{weights.shape[3]}×{weights.shape[1]}"))


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
