"""PNG pictures of a network and its training, drawn with matplotlib (the `plots` extra).

Every function writes one PNG of a fixed pixel size (no tight bounding box, so sizes are
predictable) and returns its path. matplotlib is imported lazily with the Agg backend, so
nothing here needs a display.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch

from convnet.errors import ConvnetError

DPI = 100
PANEL = 1.2  # inches per feature map or filter in a grid


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ConvnetError("Pictures need matplotlib, which is not installed. Install it "
                           "with: pip install 'convnet[plots]' (or pip install matplotlib)."
                           ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI)
    _pyplot().close(figure)
    return path


def _as_picture(image: torch.Tensor):
    """uint8 (C, H, W) -> an array imshow takes: (H, W) for gray, (H, W, 3) for RGB."""
    pixels = image.detach().cpu()
    return pixels[0].numpy() if pixels.shape[0] == 1 else pixels.permute(1, 2, 0).numpy()


def input_image(image: torch.Tensor, path: Path, title: str) -> Path:
    """The image as the model sees it (after resizing), uint8 (C, H, W)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(3, 3.3))
    axis.imshow(_as_picture(image), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    height, width = image.shape[1:]
    axis.set_title(f"{title}\n{height}×{width}×{image.shape[0]}", fontsize=9)
    axis.axis("off")
    return _save(figure, path)


def _grid(count: int) -> tuple[int, int]:
    columns = min(count, 8)
    return math.ceil(count / columns), columns


def feature_maps(maps: torch.Tensor, path: Path, title: str) -> Path:
    """One panel per map of a layer's output (K, h, w), all on one colour scale."""
    plt = _pyplot()
    maps = maps.detach().float().cpu()
    rows, columns = _grid(maps.shape[0])
    figure, axes = plt.subplots(rows, columns, figsize=(columns * PANEL, rows * PANEL + 0.6),
                                squeeze=False)
    low, high = float(maps.min()), float(maps.max())
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index < maps.shape[0]:
            shown = axis.imshow(maps[index].numpy(), cmap="viridis", vmin=low, vmax=high,
                                interpolation="nearest")
            axis.set_title(str(index), fontsize=7)
    figure.suptitle(title, fontsize=9)
    figure.colorbar(shown, ax=axes.ravel().tolist(), shrink=0.8)
    return _save(figure, path)


def filters(weights: torch.Tensor, path: Path, title: str) -> Path:
    """A first layer's filters (F, C, k, k): RGB pictures for 3 input channels (each filter
    stretched to 0..1 on its own), else the first input channel on one shared scale."""
    plt = _pyplot()
    weights = weights.detach().float().cpu()
    rows, columns = _grid(weights.shape[0])
    figure, axes = plt.subplots(rows, columns, figsize=(columns * PANEL, rows * PANEL + 0.6),
                                squeeze=False)
    rgb = weights.shape[1] == 3
    low, high = float(weights.min()), float(weights.max())
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index >= weights.shape[0]:
            continue
        kernel = weights[index]
        if rgb:
            span = (kernel.max() - kernel.min()).clamp(min=1e-12)
            axis.imshow(((kernel - kernel.min()) / span).permute(1, 2, 0).numpy(),
                        interpolation="nearest")
        else:
            axis.imshow(kernel[0].numpy(), cmap="gray", vmin=low, vmax=high,
                        interpolation="nearest")
        axis.set_title(str(index), fontsize=7)
    figure.suptitle(title, fontsize=9)
    return _save(figure, path)


def gradcam(image: torch.Tensor, cam: torch.Tensor, path: Path, title: str) -> Path:
    """The image with a Grad-CAM heatmap (H, W) in [0, 1] laid over it."""
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(6, 3.3))
    for axis in (left, right):
        axis.imshow(_as_picture(image), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        axis.axis("off")
    right.imshow(cam.detach().cpu().numpy(), cmap="jet", alpha=0.5, vmin=0, vmax=1,
                 interpolation="bilinear")
    left.set_title("input", fontsize=9)
    right.set_title(title, fontsize=9)
    return _save(figure, path)


def top_k(probabilities: Sequence[tuple[str, float]], path: Path, title: str) -> Path:
    """Horizontal bars of the top classes' probabilities, the most likely on top."""
    plt = _pyplot()
    names = [name for name, _ in probabilities][::-1]
    values = [value for _, value in probabilities][::-1]
    height = 0.4 * len(names) + 1.2  # inches
    figure, axis = plt.subplots(figsize=(5, height))
    bars = axis.barh(names, values, color="tab:blue")
    axis.bar_label(bars, labels=[f"{value:.2f}" for value in values], fontsize=8, padding=2)
    axis.set_xlim(0, 1.1)
    axis.set_xlabel("probability")
    axis.set_title(title, fontsize=9)
    figure.subplots_adjust(left=0.3, bottom=0.55 / height, top=1 - 0.35 / height)
    return _save(figure, path)
