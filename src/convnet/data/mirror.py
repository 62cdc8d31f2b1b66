"""Does a mirror image keep its class? Decided from the images, not from the file format.

A nearest-class-mean classifier is fitted on one half of the training images and scored on
the other half twice: as they are, and mirrored left-right. Where mirroring costs it
accuracy well beyond chance variation (a mirrored 3 is no 3), random flips would teach the
network wrong examples; where it costs nothing (a mirrored cat is a cat), flips are free
extra data. Two folds, a few thousand images at 16 px: well under a second.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from convnet.data.dataset import Split

SAMPLE = 4000  # images the check looks at, at most
SIDE = 16  # they are shrunk to at most this side: class shapes, not texture


@dataclass(frozen=True)
class MirrorCheck:
    accuracy: float  # nearest class mean on held-out halves, images as they are
    mirrored: float  # the same classifier on the mirrored images
    chance: float  # 1 / classes
    scored: int  # images scored (both folds)

    @property
    def drop(self) -> float:
        return self.accuracy - self.mirrored

    @property
    def flips_ok(self) -> bool:
        """False when mirroring clearly costs accuracy: the drop is beyond two standard
        errors of the two accuracies' difference and a tenth of the skill above chance."""
        error = math.sqrt(2 * max(self.accuracy * (1 - self.accuracy), 1e-4) / self.scored)
        skill = self.accuracy - self.chance
        return not (self.drop > 2 * error and self.drop > max(0.02, 0.1 * skill))

    def reason(self) -> str:
        return (f"mirrored images: {self.accuracy:.0%} -> {self.mirrored:.0%} by class means "
                f"(chance {self.chance:.0%})")

    def to_dict(self) -> dict:
        return {**asdict(self), "flips_ok": self.flips_ok}


def _small(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) uint8 -> (N, C*h*w) float, shrunk by area averaging to at most SIDE."""
    x = images.float() / 255
    height, width = x.shape[-2:]
    if max(height, width) > SIDE:
        scale = SIDE / max(height, width)
        x = F.interpolate(x, size=(max(1, round(height * scale)), max(1, round(width * scale))),
                          mode="area")
    return x


def _fold(fit: torch.Tensor, fit_labels: torch.Tensor, test: torch.Tensor,
          test_labels: torch.Tensor, classes: int) -> tuple[int, int]:
    """Correct guesses on ``test`` as is and mirrored, by the class means of ``fit``."""
    flat = fit.flatten(1)  # (n, D)
    sums = torch.zeros(classes, flat.shape[1]).index_add_(0, fit_labels, flat)
    counts = torch.bincount(fit_labels, minlength=classes).clamp(min=1)
    means = sums / counts[:, None]  # (K, D); an absent class has mean 0, and rarely wins
    hits = []
    for view in (test, test.flip(-1)):
        guess = torch.cdist(view.flatten(1), means).argmin(1)  # (m,)
        hits.append(int((guess == test_labels).sum()))
    return hits[0], hits[1]


def mirror_check(split: Split, classes: int, seed: int = 0) -> MirrorCheck:
    """Score how much mirroring hurts a simple classifier of ``split``'s images."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(split), generator=generator)[:SAMPLE]
    images = _small(split.images[order])  # (n, C, h, w)
    labels = split.labels[order]
    half = len(order) // 2
    if half == 0:
        return MirrorCheck(1 / classes, 1 / classes, 1 / classes, 1)
    a, b = slice(0, half), slice(half, 2 * half)
    same_a, mirror_a = _fold(images[a], labels[a], images[b], labels[b], classes)
    same_b, mirror_b = _fold(images[b], labels[b], images[a], labels[a], classes)
    scored = 2 * half
    return MirrorCheck((same_a + same_b) / scored, (mirror_a + mirror_b) / scored,
                       1 / classes, scored)
