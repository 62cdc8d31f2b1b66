"""Near-duplicates that the pixels hide: photos whose ImageNet features nearly coincide.

A copy cropped, mirrored, recoloured or re-encoded past what the perceptual search
(`convnet.data.similar`) undoes still shows the same things, so EfficientNet-Lite0's pooled
features of the two point the same way. Each photo's `NEIGHBOURS` nearest by cosine are
found with the same blocked matrix products as the search; a pair is kept when its cosine
is at least `COSINE` and beats by `MARGIN` what either photo reaches with any other (as
the search does: distinct photos of one scene have look-alikes all around).

It runs for colour images of at least `PHOTO_SIDE` px, when the ``pretrained`` extra is
installed; smaller images are left to the perceptual search. Larger ones are compared at
a shorter side of `SIDE`. The constants were set on CIFAR-10 photos enlarged to 128 px
(bench/RESULTS.md, "Copies that the pixels hide").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from convnet.data.duplicates import Finder
from convnet.data.similar import candidates
from convnet.features import imagenet as imagenet_features

NAME = "imagenet-v1"  # the cache file's name: change it when the method changes
PHOTO_SIDE = 64
SIDE = 96  # larger photos are compared at this shorter side: 3× faster than 128 px
NEIGHBOURS = 8
COSINE = 0.75
MARGIN = 0.1


def finders(progress: Callable[[int, int], None] | None = None) -> list[Finder]:
    """The feature finder where the extra is installed (none otherwise); ``progress`` is
    told (images done, images) as their features are computed."""
    if not imagenet_features.installed():
        return []
    return [(NAME, lambda fetch, count, same: find(fetch, count, same, progress))]


def find(fetch: Callable[[Sequence[int]], torch.Tensor], count: int,
         same: Sequence[str] | None = None,
         progress: Callable[[int, int], None] | None = None) -> list[tuple[int, int, float]]:
    """(i, j, cosine) of the photos whose features nearly coincide, i < j; none for
    grayscale or small images. Equal ``same`` keys (the same bytes) are not reported."""
    if count < 2:
        return []
    channels, height, width = fetch([0]).shape[1:]
    if channels != 3 or min(height, width) < PHOTO_SIDE:
        return []
    codes = F.normalize(imagenet_features.pooled(_smaller(fetch), count, progress),
                        dim=1)  # (N, 1280)
    pairs = candidates(codes, k=NEIGHBOURS)  # every nearest: the rivals of a pair too
    if same is not None and len(pairs):
        pairs = pairs[torch.tensor([same[i] != same[j] for i, j in pairs.tolist()],
                                   dtype=torch.bool)]
    if not len(pairs):
        return []
    cosines = (codes[pairs[:, 0]] * codes[pairs[:, 1]]).sum(1)  # (P,)
    keep = _standing_out(pairs, cosines)
    return [(i, j, round(c, 4)) for (i, j), c in zip(pairs[keep].tolist(),
                                                     cosines[keep].tolist())]


def _smaller(fetch: Callable[[Sequence[int]], torch.Tensor]
             ) -> Callable[[Sequence[int]], torch.Tensor]:
    """``fetch`` with its images shrunk (antialiased) to a shorter side of `SIDE`."""
    def smaller(rows: Sequence[int]) -> torch.Tensor:
        images = fetch(rows)  # (n, 3, H, W) uint8
        height, width = images.shape[-2:]
        scale = SIDE / min(height, width)
        if scale >= 1:
            return images
        size = (round(height * scale), round(width * scale))
        return F.interpolate(images.float(), size=size, mode="bilinear", antialias=True
                             ).round().clamp(0, 255).to(torch.uint8)  # (n, 3, h, w)
    return smaller


def _standing_out(pairs: torch.Tensor, cosines: torch.Tensor) -> torch.Tensor:
    """(P,) bool: over COSINE, and MARGIN over each side's best other neighbour that is
    not itself over COSINE with both (a third copy)."""
    best: dict[int, list[tuple[float, int]]] = {}
    for (i, j), value in zip(pairs.tolist(), cosines.tolist()):
        best.setdefault(i, []).append((value, j))
        best.setdefault(j, []).append((value, i))
    high = {(i, j) for (i, j), value in zip(pairs.tolist(), cosines.tolist())
            if value >= COSINE}
    keep = torch.zeros(len(pairs), dtype=torch.bool)
    for index, ((i, j), value) in enumerate(zip(pairs.tolist(), cosines.tolist())):
        if (i, j) not in high:
            continue
        rivals = [v for side, other in ((i, j), (j, i)) for v, k in best[side]
                  if k != other and not _copy_of_both(k, i, j, high)]
        keep[index] = not rivals or value >= max(rivals) + MARGIN
    return keep


def _copy_of_both(k: int, i: int, j: int, high: set[tuple[int, int]]) -> bool:
    return all((min(k, x), max(k, x)) in high for x in (i, j))
