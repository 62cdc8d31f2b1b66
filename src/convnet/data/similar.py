"""Near-duplicate images: copies resized, re-encoded, shifted by a pixel or two, brightened,
or turned grayscale, found among many images without comparing every pair in Python.

Every step is batched tensor work on the luminance of the decoded images (at their decoded
size, at most `LARGEST` px), as it is and aligned: moved so that its centre of brightness
is at the centre (that undoes a shift of a drawing on a plain ground, such as a digit):

1. **Candidates.** Perceptual signatures per image: its luminance, as it is and aligned,
   blurred and averaged down to 16×16, the mean taken out and the length set to one (an
   average hash before its threshold). Each image's `NEIGHBOURS` nearest signatures by
   cosine, from blocked matrix products (memory bounded), are its candidates; pairs under
   `PREFILTER` are dropped.
2. **Verification.** The normalised correlation of the two images at the best of the
   shifts up to `SHIFT` pixels either way (as they are) or one pixel (aligned), with
   either side blurred as a resized copy is
   (σ in `BLURS`), and for pairs that fall a little short, one side magnified 5% either
   way (a slightly cropped copy). A pair is kept when that similarity is at least
   `THRESHOLD` and beats, by `MARGIN`, what each of the two reaches with any other image:
   a copy is closer to its original than anything else is, while distinct images that
   merely look alike (digits by one writer) have look-alikes all around.

The constants were set on the shared digits (bench/RESULTS.md, "Near-duplicates").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

LARGEST = 64  # luminance side beyond which images are averaged down first
SIGNATURE = 16  # side of the candidate signature
SIGNATURE_BLUR = 1.0  # Gaussian σ (px) before it is averaged down
SHIFT = 2  # pixels either way that a copy as it is may be shifted by
NEIGHBOURS = 8  # candidates per image
PREFILTER = 0.95  # signature cosine under which a candidate is not verified ...
NEAREST_KEPT = 1  # ... unless it is among the image's this many nearest
QUICK = 0.8  # plain correlation (no blur, no zoom) under which a pair is not refined
BLURS = (0.0, 0.75, 1.5)  # Gaussian σ (px) tried on either side of a pair
ZOOMS = (1 / 1.05, 1.05)  # magnifications tried when the plain similarity falls short
ZOOM_FROM = 0.9  # ... from this similarity up
THRESHOLD = 0.98  # verified similarity from which a pair can be a near-duplicate
MARGIN = 0.01  # ... and by how much it must beat the pair's other look-alikes
CHUNK = 1024  # signature rows per block: memory is CHUNK × N floats

Progress = Callable[[int, int], None]
Fetch = Callable[[Sequence[int]], torch.Tensor]  # rows -> (len(rows), C, H, W) uint8
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, the weights PIL's "L" conversion uses


def luminance(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) uint8 -> (N, 1, h, w) float luminance, h, w at most `LARGEST`."""
    x = images.float()
    if x.shape[1] == 3:
        x = (x * torch.tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)  # (N, 1, H, W)
    elif x.shape[1] != 1:
        x = x.mean(1, keepdim=True)
    height, width = x.shape[-2:]
    if max(height, width) > LARGEST:
        size = (max(1, height * LARGEST // max(height, width)),
                max(1, width * LARGEST // max(height, width)))
        x = F.interpolate(x, size=size, mode="area")
    return x


def align(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) luminance moved (sub-pixel, edges repeated) so that its centre of
    brightness, over the darkest value, is at the centre."""
    n, _, height, width = x.shape
    weight = x[:, 0] - x[:, 0].amin((1, 2), keepdim=True)  # (N, H, W)
    total = weight.sum((1, 2)).clamp_min(1e-6)
    cy = (weight.sum(2) * torch.arange(height)).sum(1) / total  # (N,)
    cx = (weight.sum(1) * torch.arange(width)).sum(1) / total
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, 0, 2] = (cx - (width - 1) / 2) * 2 / width  # in grid units of [-1, 1]
    theta[:, 1, 2] = (cy - (height - 1) / 2) * 2 / height
    return _resampled(x, theta)


def _resampled(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) sampled through the affine maps ``theta`` (N, 2, 3), edges repeated."""
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border",
                         align_corners=False)


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """(N, 1, H, W) blurred by a separable Gaussian of ``sigma`` px (edges repeated)."""
    if sigma <= 0:
        return x
    radius = int(3 * sigma + 0.5)
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-taps**2 / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"),
                    kernel.view(1, 1, -1, 1))


def _normalised(x: torch.Tensor) -> torch.Tensor:
    """Rows with their mean removed and unit length; flat rows stay zero."""
    x = x.flatten(1)
    x = x - x.mean(1, keepdim=True)
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-6)


def signatures(fetch: Fetch, count: int, batch: int = 4096
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Two (count, SIGNATURE²) unit-length signatures of the rows ``fetch`` returns: of the
    luminance as it is, and aligned."""
    plain, aligned = [], []
    for start in range(0, count, batch):
        x = luminance(fetch(range(start, min(start + batch, count))))
        for found, y in ((plain, x), (aligned, align(x))):
            found.append(_normalised(F.adaptive_avg_pool2d(_inner(blur(y, SIGNATURE_BLUR)),
                                                           SIGNATURE)[:, 0]))
    empty = torch.zeros(0, SIGNATURE * SIGNATURE)
    return (torch.cat(plain) if plain else empty), (torch.cat(aligned) if aligned else empty)


def _inner(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) without a border of a tenth of each side (at least `SHIFT` + 1 px):
    where a shifted copy has its fill, and a cropped one has lost the edge."""
    dy, dx = (max(SHIFT + 1, side // 10) for side in x.shape[-2:])
    return x[..., dy : x.shape[-2] - dy, dx : x.shape[-1] - dx] \
        if min(x.shape[-2:]) > 4 * (SHIFT + 1) else x


def candidates(codes: torch.Tensor, k: int = NEIGHBOURS, floor: float = -1.0,
               nearest_kept: int = 0, progress: Progress | None = None) -> torch.Tensor:
    """(P, 2) pairs i < j where j is among i's ``k`` nearest codes (or i among j's), with
    a cosine of at least ``floor``, or among its ``nearest_kept`` nearest whatever the
    cosine."""
    n = len(codes)
    k = min(k, n - 1)
    if k <= 0:
        return torch.zeros(0, 2, dtype=torch.long)
    found = []
    for start in range(0, n, CHUNK):
        block = codes[start : start + CHUNK] @ codes.T  # (B, N) cosines
        rows = torch.arange(start, start + len(block))
        block[torch.arange(len(block)), rows] = -2.0  # not its own neighbour
        nearest = block.topk(k, dim=1)  # (B, k)
        rank = torch.arange(k).repeat(len(block))  # (B·k,) 0 for the nearest
        keep = (nearest.values.flatten() >= floor) | (rank < nearest_kept)
        pairs = torch.stack([rows.repeat_interleave(k), nearest.indices.flatten()], 1)
        found.append(pairs[keep])
        if progress:
            progress(min(start + CHUNK, n), n)
    pairs = torch.cat(found)
    pairs = torch.stack([pairs.min(1).values, pairs.max(1).values], 1)  # (P, 2) i < j
    return torch.unique(pairs, dim=0)


def correlation(a: torch.Tensor, b: torch.Tensor, shift: int = 1) -> torch.Tensor:
    """Best normalised correlation of (P, H, W) ``a`` and ``b`` over shifts of ``b`` up to
    ``shift`` pixels, on the central (H − 2·shift) × (W − 2·shift) window -> (P,)."""
    height, width = a.shape[-2] - 2 * shift, a.shape[-1] - 2 * shift
    centre = _normalised(a[:, shift : shift + height, shift : shift + width])
    best = torch.full((len(a),), -1.0)
    for dy in range(2 * shift + 1):
        for dx in range(2 * shift + 1):
            moved = _normalised(b[:, dy : dy + height, dx : dx + width])  # (P, h·w)
            best = torch.maximum(best, (centre * moved).sum(1))
    return best


def zoom(x: torch.Tensor, factor: float) -> torch.Tensor:
    """(N, 1, H, W) magnified ``factor`` times about the centre (edges repeated)."""
    theta = torch.zeros(len(x), 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / factor
    return _resampled(x, theta)


def _blurred_best(a: torch.Tensor, b: torch.Tensor, shift: int) -> torch.Tensor:
    best = torch.full((len(a),), -1.0)
    for sigma in BLURS:
        best = torch.maximum(best, correlation(blur(a, sigma)[:, 0], b[:, 0], shift))
        if sigma > 0:
            best = torch.maximum(best, correlation(a[:, 0], blur(b, sigma)[:, 0], shift))
    return best


def similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(P, 1, H, W) luminance pairs -> (P,): the best correlation with either side blurred
    (a resized copy), as they are with shifts up to `SHIFT` px (a border of fill stays out
    of the window) and aligned with shifts up to 1 px; for pairs close to the threshold,
    also with ``b`` zoomed by `ZOOMS` (a slightly cropped copy)."""
    a_aligned, b_aligned = align(a), align(b)
    best = torch.maximum(correlation(a[:, 0], b[:, 0], SHIFT),
                         correlation(a_aligned[:, 0], b_aligned[:, 0], 1))
    refine = (best >= QUICK).nonzero().flatten()  # the others are far from copies
    if len(refine):
        best[refine] = torch.maximum(
            _blurred_best(a[refine], b[refine], SHIFT),
            _blurred_best(a_aligned[refine], b_aligned[refine], 1))
    near = ((best >= ZOOM_FROM) & (best < THRESHOLD)).nonzero().flatten()
    for factor in ZOOMS if len(near) else ():
        zoomed = _blurred_best(a_aligned[near], zoom(b_aligned[near], factor), 1)
        best[near] = torch.maximum(best[near], zoomed)
    return best


def near_pairs(fetch: Fetch, count: int, same: Sequence[str] | None = None,
               progress: Progress | None = None, batch: int = 4096
               ) -> list[tuple[int, int, float]]:
    """(i, j, similarity) for every near-duplicate pair among ``count`` images, i < j.

    ``fetch(rows)`` returns those rows as (len(rows), C, H, W) uint8, so the images are
    read a batch at a time. Rows with equal ``same`` keys (the same bytes) are exact
    duplicates: they are not reported here, nor counted as each other's look-alikes.
    """
    if count < 2:
        return []
    def phase(number: int) -> Progress | None:  # two signature passes on one bar
        return None if progress is None else \
            (lambda done, total: progress(number * total + done, 2 * total))

    pairs = torch.unique(torch.cat([candidates(codes, floor=PREFILTER,
                                               nearest_kept=NEAREST_KEPT, progress=phase(i))
                                    for i, codes in enumerate(signatures(fetch, count))]),
                         dim=0)
    if same is not None:
        pairs = pairs[torch.tensor([same[i] != same[j] for i, j in pairs.tolist()],
                                   dtype=torch.bool)] if len(pairs) else pairs
    scores = torch.cat([similarity(luminance(fetch(part[:, 0].tolist())),
                                   luminance(fetch(part[:, 1].tolist())))
                        for part in pairs.split(batch)]) if len(pairs) else torch.zeros(0)
    keep = _standing_out(pairs, scores)
    return [(i, j, s) for (i, j), s in zip(pairs[keep].tolist(), scores[keep].tolist())]


def _standing_out(pairs: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """(P,) bool: pairs over THRESHOLD that beat, by MARGIN, what either image reaches with
    any other look-alike. An image over THRESHOLD with both is one more copy in the same
    group, not a look-alike: copies of one picture do not hide each other.

    Loops in Python over the pairs over THRESHOLD only (few), each through its two images'
    neighbours.
    """
    keep = torch.zeros(len(pairs), dtype=torch.bool)
    high = (scores >= THRESHOLD).nonzero().flatten().tolist()
    if not high:
        return keep
    score_of = dict(zip(map(tuple, pairs.tolist()), scores.tolist()))
    neighbours: dict[int, list[tuple[float, int]]] = {}
    for (i, j), value in score_of.items():
        neighbours.setdefault(i, []).append((value, j))
        neighbours.setdefault(j, []).append((value, i))
    for listed in neighbours.values():
        listed.sort(reverse=True)

    def score(a: int, b: int) -> float:
        return score_of.get((min(a, b), max(a, b)), -1.0)

    for index in high:
        i, j = pairs[index].tolist()
        rival = -1.0
        for own, other in ((i, j), (j, i)):
            for value, k in neighbours[own]:
                if k == other or (value >= THRESHOLD and score(other, k) >= THRESHOLD):
                    continue  # the pair itself, or a third copy of the same picture
                rival = max(rival, value)
                break
        keep[index] = float(scores[index]) - rival >= MARGIN
    return keep
