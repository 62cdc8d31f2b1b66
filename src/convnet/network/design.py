"""The network ``arch='auto'`` draws for an input size: as deep as the size allows.

Each stage is a 3×3 convolution, batch norm, ReLU and a 2×2 max pool, which halves the
side; stages are added while the side is 8 px or more (at most five), then one more
convolution and global average pooling feed the classifier. So the same rule gives one
convolution block at 5×5, three at 32×32 and five at 128×128 and up, and the classifier's
size never depends on the image size. Widths start at 32 filters (64 on a GPU) and double
per stage up to 128 (256 on a GPU).

Small grayscale images (16 to 32 px, digit-like) get the `default` preset instead: on
digits it is both more accurate and about twice as fast as the stage network of the same
depth (98.95% against 98.45% in 14 epochs; bench/RESULTS.md, "The planner").
"""

from __future__ import annotations

MAX_STAGES = 5
WIDTHS = {"cpu": (32, 128), "cuda": (64, 256)}  # (first stage, widest) per device type


def stages_for(side: int) -> int:
    """2×2 pools the side supports: halve while it is 8 px or more, at most MAX_STAGES."""
    stages = 0
    while side >= 8 and stages < MAX_STAGES:
        side //= 2
        stages += 1
    return stages


def design(input_shape: tuple[int, int, int], device: str = "cpu") -> str:
    """A spec (or preset name) for images of (H, W, C)."""
    height, width, channels = input_shape
    side = min(height, width)
    if channels == 1 and side >= 16 and max(height, width) <= 32:
        return "default"
    first, widest = WIDTHS.get(device, WIDTHS["cpu"])
    widths = [min(first * 2**i, widest) for i in range(stages_for(side))]
    blocks = [f"conv{w}k3p1-bn-relu-maxpool2" for w in widths]
    if not widths:  # too small to pool: two convolutions at full size
        blocks.append(f"conv{first}k3p1-bn-relu")
    blocks.append(f"conv{min(2 * (widths or [first])[-1], widest)}k3p1-bn-relu")
    return "-".join(blocks) + "-gap-fc"
