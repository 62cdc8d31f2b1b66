"""PNG pictures of a network and its training, drawn with matplotlib (the `plots` extra).

Every function writes one PNG of a fixed pixel size (no tight bounding box, so sizes are
predictable) and returns its path. matplotlib is imported lazily with the Agg backend, so
nothing here needs a display.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import torch

from convnet import extras

Target = Path | BinaryIO  # a file, or a buffer for pictures shown inline (`convnet.display`)
DPI = 100
PANEL = 1.2  # inches per feature map or filter in a grid


def _pyplot():
    extras.require("plots", "Pictures need matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Target) -> Target:
    """Write the figure as PNG to a file, or to a buffer (the pictures a notebook shows)."""
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, format="png")
    _pyplot().close(figure)
    return path


def _as_picture(image: torch.Tensor):
    """uint8 (C, H, W) -> an array imshow takes: (H, W) for gray, (H, W, 3) for RGB."""
    pixels = image.detach().cpu()
    return pixels[0].numpy() if pixels.shape[0] == 1 else pixels.permute(1, 2, 0).numpy()


def input_image(image: torch.Tensor, path: Target, title: str) -> Target:
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


def _montage(tiles: torch.Tensor, columns: int, gap: int, fill: float) -> torch.Tensor:
    """(K, h, w[, 3]) -> one picture of the tiles in rows of ``columns``, ``fill`` between."""
    count, height, width = tiles.shape[:3]
    rows = math.ceil(count / columns)
    canvas = torch.full((rows * (height + gap), columns * (width + gap) - gap,
                         *tiles.shape[3:]), fill)
    for index in range(count):
        top = (index // columns) * (height + gap) + gap  # a gap above each row: its labels
        left = (index % columns) * (width + gap)
        canvas[top : top + height, left : left + width] = tiles[index]
    return canvas


def _tiles(tiles: torch.Tensor, path: Target, title: str, colour_bar: bool,
           labels: Sequence[str] | None = None, **style) -> Target:
    """Draw tiles (K, h, w) or RGB tiles (K, h, w, 3) as one montage image, each tile
    labelled (default: its number).

    One image rather than one axis per tile: 128 maps take a second, not 30.
    """
    plt = _pyplot()
    count, height, width = tiles.shape[:3]
    rows, columns = _grid(count)
    gap = max(2, height // 3)
    # inches: the tiles, a strip for the title above and one for the colour bar beside
    wide, high = columns * PANEL + (1.0 if colour_bar else 0.2), rows * PANEL + 0.5
    figure, axis = plt.subplots(figsize=(wide, high))
    figure.subplots_adjust(left=0.1 / wide, right=1 - (1.0 if colour_bar else 0.1) / wide,
                           bottom=0.05 / high, top=1 - 0.45 / high)
    rgb = tiles.dim() == 4
    montage = _montage(tiles, columns, gap, 1.0 if rgb else float("nan"))  # NaN: blank
    shown = axis.imshow(montage.numpy(), interpolation="nearest", **style)
    for index in range(count):
        # pixel centres sit on whole coordinates: a tile's top edge is half a pixel above
        axis.text((index % columns) * (width + gap) - 0.5,
                  (index // columns) * (height + gap) + gap - 0.5,
                  str(index) if labels is None else labels[index], fontsize=6,
                  va="bottom")
    axis.axis("off")
    figure.suptitle(title, fontsize=9, y=1 - 0.1 / high, va="top")
    if colour_bar:  # in the strip kept for it, so that the tiles keep their space
        strip = figure.add_axes((1 - 0.85 / wide, 0.1 / high, 0.15 / wide, 1 - 0.6 / high))
        figure.colorbar(shown, cax=strip)
    return _save(figure, path)


def feature_maps(maps: torch.Tensor, path: Target, title: str,
                 labels: Sequence[str] | None = None) -> Target:
    """One tile per map (K, h, w), all on one colour scale, each labelled (default: its
    number)."""
    maps = maps.detach().float().cpu()
    colours = _pyplot().get_cmap("viridis").with_extremes(bad="white")
    return _tiles(maps, path, title, True, labels, cmap=colours, vmin=float(maps.min()),
                  vmax=float(maps.max()))


def filters(weights: torch.Tensor, path: Target, title: str) -> Target:
    """A first layer's filters (F, C, k, k): RGB pictures for 3 input channels (each filter
    stretched to 0..1 on its own), else the first input channel on one shared scale."""
    weights = weights.detach().float().cpu()
    if weights.shape[1] == 3:
        low = weights.amin(dim=(1, 2, 3), keepdim=True)  # (F, 1, 1, 1)
        span = (weights.amax(dim=(1, 2, 3), keepdim=True) - low).clamp(min=1e-12)
        return _tiles(((weights - low) / span).permute(0, 2, 3, 1), path, title, False)
    colours = _pyplot().get_cmap("gray").with_extremes(bad="white")
    return _tiles(weights[:, 0], path, title, True, cmap=colours,
                  vmin=float(weights.min()), vmax=float(weights.max()))


def gradcam(image: torch.Tensor, cam: torch.Tensor, path: Target, title: str) -> Target:
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


def top_k(probabilities: Sequence[tuple[str, float]], path: Target, title: str) -> Target:
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


def curves(rows: list[dict[str, float | None]], path: Target) -> Target:
    """Loss and accuracy per epoch, training against validation (rows of metrics.csv)."""
    plt = _pyplot()
    epochs = [int(row["epoch"]) for row in rows]
    figure, (loss, accuracy) = plt.subplots(1, 2, figsize=(9, 3.5))
    # training figures are on augmented batches with label smoothing, validation on the
    # plain images and targets: the gap in loss is partly that, not overfitting
    for axis, key, label in ((loss, "loss", "loss (training: augmented, label-smoothed)"),
                             (accuracy, "acc", "accuracy")):
        axis.plot(epochs, [row[f"train_{key}"] for row in rows], "o-", label="training")
        val = [row[f"val_{key}"] for row in rows]
        if any(value is not None for value in val):
            axis.plot(epochs, val, "s-", label="validation")
        axis.set_xlabel("epoch")
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.set_title(label, fontsize=10)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.subplots_adjust(bottom=0.15, wspace=0.25)
    return _save(figure, path)


def compared_curves(names: list[str], histories: list[list[dict[str, float | None]]],
                    path: Target) -> Target:
    """Several runs' training loss and validation accuracy per epoch, one line per run
    (`convnet compare`)."""
    plt = _pyplot()
    figure, (loss, accuracy) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, rows in zip(names, histories):
        epochs = [row["epoch"] for row in rows]
        loss.plot(epochs, [row["train_loss"] for row in rows], label=name)
        accuracy.plot(epochs, [row["val_acc"] for row in rows], label=name)
    loss.set(title="training loss", xlabel="epoch")
    accuracy.set(title="validation accuracy", xlabel="epoch")
    accuracy.legend(fontsize=8)
    return _save(figure, path)


def confusion(matrix: torch.Tensor, classes: list[str], path: Target, title: str) -> Target:
    """Counts and row-normalised rates side by side; rows are true classes."""
    plt = _pyplot()
    counts = matrix.detach().cpu().double()
    rates = counts / counts.sum(1, keepdim=True).clamp(min=1)
    side = max(4.0, 0.45 * len(classes) + 2)
    figure, axes = plt.subplots(1, 2, figsize=(2 * side, side))
    for axis, values, label, text in ((axes[0], counts, "counts", "{:.0f}"),
                                      (axes[1], rates, "share of the true class", "{:.2f}")):
        axis.imshow(values.numpy(), cmap="Blues")
        axis.set_xticks(range(len(classes)), classes, rotation=90, fontsize=7)
        axis.set_yticks(range(len(classes)), classes, fontsize=7)
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        axis.set_title(f"{title}: {label}", fontsize=9)
        if len(classes) <= 20:
            high = float(values.max()) or 1.0
            for (i, j), value in _cells(values):
                axis.text(j, i, text.format(value), ha="center", va="center", fontsize=6,
                          color="white" if value > high / 2 else "black")
    figure.subplots_adjust(bottom=0.2, wspace=0.35)
    return _save(figure, path)


def reliability(panels: list[tuple[str, list[dict[str, float]]]], path: Target,
                title: str) -> Target:
    """A reliability diagram per panel (its name, `convnet.runs.calibration.reliability`'s
    bins): how often the top class is right against how sure it was, bin by bin. Honest
    probabilities put the bars on the diagonal."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2),
                                squeeze=False)
    for axis, (name, bins) in zip(axes[0], panels):
        used = [b for b in bins if b["images"]]
        width = bins[0]["high"] - bins[0]["low"]
        axis.bar([b["low"] for b in used], [b["accuracy"] for b in used], width=width,
                 align="edge", color="#4c72b0", edgecolor="white", label="share right")
        axis.hlines([b["confidence"] for b in used], [b["low"] for b in used],
                    [b["high"] for b in used], color="#c44e52", linewidth=2.5,
                    label="mean top probability")
        for b in used:  # a bar of few images says little: its count says how little
            axis.text((b["low"] + b["high"]) / 2, min(b["accuracy"], 0.93) + 0.02,
                      f"{b['images']:,}", ha="center", fontsize=5, color="#333333")
        axis.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
        axis.set(xlim=(0, 1), ylim=(0, 1.05), xlabel="top probability", ylabel="share right")
        axis.set_title(name, fontsize=9)
        axis.legend(fontsize=7, loc="upper left")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return _save(figure, path)


def _cells(values: torch.Tensor):
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            yield (i, j), float(values[i, j])


def gallery(items: list[tuple[torch.Tensor, torch.Tensor, str]], path: Target,
            title: str) -> Target:
    """Images (uint8 (C, H, W)) with their Grad-CAM laid over, each with a caption."""
    plt = _pyplot()
    count = max(1, len(items))
    rows, columns = math.ceil(count / 6), min(count, 6)
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.8, rows * 2.0 + 0.5),
                                squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    if not items:  # say it in the picture, rather than show a blank one
        axes.flat[0].text(0.5, 0.5, title, ha="center", va="center", wrap=True, fontsize=9)
        return _save(figure, path)
    for axis, (image, cam, caption) in zip(axes.flat, items):
        axis.imshow(_as_picture(image), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        axis.imshow(cam.detach().cpu().numpy(), cmap="jet", alpha=0.4, vmin=0, vmax=1)
        axis.set_title(caption, fontsize=7)
    figure.suptitle(title, fontsize=9)
    return _save(figure, path)


def lr_sweep(lrs: list[float], losses: list[float], suggestion: float, path: Target) -> Target:
    """The range test: smoothed loss against learning rate (log scale), the suggestion
    marked."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 3.8))
    axis.plot(lrs, losses)
    axis.axvline(suggestion, color="tab:red", linestyle="--",
                 label=f"suggested lr {suggestion:.3g}")
    axis.set(xscale="log", xlabel="learning rate", ylabel="training loss (smoothed)",
             title="learning-rate range test")
    axis.legend()
    return _save(figure, path)
