"""Generated shapes in the spirit of the texts' X-or-not-X example.

Each image is one white stroke drawing on black — an X, an O, a +, a square, a triangle or a
line — moved off-centre, scaled, stretched, thickened or thinned, slightly rotated, then
noised. Everything comes from one seed, so the same options give the same pixels.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from convnet.data.dataset import Dataset, Split
from convnet.errors import ConvnetError

SHAPES = ("x", "o", "plus", "square", "triangle", "line")
_SUPERSAMPLE = 4  # draw large, then shrink: smooth strokes even at 7×7


def _outline(kind: str, rng: np.random.Generator) -> list[np.ndarray]:
    """Strokes of a shape centred on 0 with radius ~1, as arrays of (x, y) points."""
    if kind == "x":
        return [np.array([[-1, -1], [1, 1]]), np.array([[-1, 1], [1, -1]])]
    if kind == "plus":
        return [np.array([[0, -1], [0, 1]]), np.array([[-1, 0], [1, 0]])]
    if kind == "square":
        return [np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]]) * 0.85]
    if kind == "triangle":
        return [np.array([[0, -1], [0.95, 0.75], [-0.95, 0.75], [0, -1]])]
    if kind == "line":
        angle = rng.choice([0.0, np.pi / 2, np.pi / 4, -np.pi / 4])
        end = np.array([np.cos(angle), np.sin(angle)])
        return [np.stack([-end, end])]
    angles = np.linspace(0, 2 * np.pi, 48)
    return [np.stack([np.cos(angles), np.sin(angles)], axis=1)]  # "o"


def draw(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One ``size``×``size`` uint8 image of ``kind`` with random placement and noise."""
    canvas = size * _SUPERSAMPLE
    angle = np.deg2rad(rng.uniform(-15, 15))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    stretch = rng.uniform(0.8, 1.2, size=2)  # independent x/y scale: a slight distortion
    radius = canvas * rng.uniform(0.22, 0.34)
    centre = canvas / 2 + rng.uniform(-0.15, 0.15, size=2) * canvas
    width = max(_SUPERSAMPLE, int(canvas * rng.uniform(0.05, 0.13)))
    image = Image.new("L", (canvas, canvas), 0)
    pen = ImageDraw.Draw(image)
    for stroke in _outline(kind, rng):
        points = (stroke * stretch) @ rotation.T * radius + centre
        pen.line([tuple(p) for p in points], fill=255, width=width, joint="curve")
    small = np.asarray(image.resize((size, size), Image.Resampling.BOX), dtype=np.float32)
    noisy = small + rng.normal(0, rng.uniform(0, 20), size=small.shape)
    return np.clip(noisy, 0, 255).round().astype(np.uint8)


def _generate(classes: list[list[str]], per_class: int, size: int,
              rng: np.random.Generator) -> Split:
    images, labels = [], []
    for label, kinds in enumerate(classes):
        for index in range(per_class):
            kind = kinds[index % len(kinds)]
            images.append(draw(kind, size, rng))
            labels.append(label)
    stacked = torch.from_numpy(np.stack(images)).unsqueeze(1)  # (N, 1, size, size)
    return Split(stacked, torch.tensor(labels, dtype=torch.int64))


def load_shapes(size: int = 28, train: int = 600, test: int = 150, seed: int = 0,
                variant: str = "shapes") -> Dataset:
    """Generate the `shapes` dataset (6 classes) or its 2-class `x-or-not-x` variant.

    Args:
        size: side of the square images in pixels (at least 5).
        train: training images per class.
        test: test images per class.
        seed: the same seed gives the same images.
        variant: ``"shapes"`` or ``"x-or-not-x"``.
    """
    if size < 5:
        raise ConvnetError(f"shapes: size must be at least 5 pixels. Received: size={size}.")
    if train < 2 or test < 1:
        raise ConvnetError("shapes: train must be at least 2 and test at least 1 image per "
                           f"class. Received: train={train}, test={test}.")
    if variant == "x-or-not-x":
        names, kinds = ["x", "not-x"], [["x"], [k for k in SHAPES if k != "x"]]
    else:
        names, kinds = list(SHAPES), [[k] for k in SHAPES]
    rng = np.random.default_rng(seed)
    return Dataset(variant, names, _generate(kinds, train, size, rng),
                   _generate(kinds, test, size, rng),
                   source=f"generated: size={size}, train={train}, test={test}, seed={seed}")
