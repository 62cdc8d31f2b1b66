"""How many of a trained network's first layers keep their weights while the rest
fine-tunes (``frozen_layers``), as the fine-tuning plan weighs it.

The candidates are the points where the network's feature maps shrink: freezing every
layer at the input's full (or half) resolution, then everything down to a quarter, an
eighth, and so on, up to every layer before the head (the head alone trains, Teachable
Machine's way). A frozen layer costs its forward pass only, so a step's cost falls with the
share of the multiply-adds the frozen layers hold; on a CPU the early, high-resolution
stages are slower than their multiply-adds say, so that estimate errs on the slow side and
the time budget's callback gives back what it over-counted.

The last candidate is the head alone (``alone``): no epochs at all after the head fitted on
features computed once. It replaces epochs through a wholly frozen body, which cost one
forward pass per image per epoch for what the same features at a larger image side give:
on 1,000 cat/dog photos the head alone on EfficientNet-Lite0's features at 224 px scored
77.00% ("finetune head-only"), and 3 epochs with 149 layers frozen at 160 px 77.75%
("finetune partial", bench/RESULTS.md), with three more passes over the images.

Measured on cat/dog photos at 160 px, 3 epochs (bench/RESULTS.md, "finetune partial"):
freezing the half-resolution stem of EfficientNet-Lite0 was as accurate as training every
layer (84.00% against 83.25%) and 16% faster, and each further stage frozen cost accuracy
(80.50% to 77.75%) for speed (up to 7× faster epochs). So the plan freezes the first stage
by default, and more only when the budget would otherwise cut the image size below
`SIDE_FLOOR` or the epochs.
"""

from __future__ import annotations

from dataclasses import dataclass

from convnet.network.model import layer_shapes
from convnet.network.shapes import LayerInfo
from convnet.network.spec import Flatten

FORWARD_SHARE = 0.3  # a forward pass costs about this share of a training step
# a frozen layer's pass (no autograd, no optimizer step): every layer before the head
# frozen trained 306 images/s against 43.3 with none (bench/RESULTS.md, finetune partial)
FROZEN_SHARE = 0.15
SIDE_FLOOR = 128  # below this the plan freezes more layers before it shrinks the images
SAME_SHARE = 0.02  # candidates whose shares differ less are one candidate


@dataclass(frozen=True)
class Freeze:
    """One candidate: the first ``layers`` layers frozen."""

    layers: int
    share: float  # of the network's multiply-adds per image held by the frozen layers
    where: str  # what they are, for the plan's reason
    alone: bool = False  # the head alone: no epochs after it is fitted on the features

    @property
    def step_factor(self) -> float:
        """A training step's cost with these layers frozen, as a share of the full step."""
        return 1 - self.share * (1 - FROZEN_SHARE)


def candidates(arch: str, input_shape: tuple[int, int, int], classes: int) -> list[Freeze]:
    """Every layer training, then frozen up to each point where the maps shrink, then
    every layer before the head; fewest frozen first."""
    return _candidates(layer_shapes(arch, input_shape, classes))


def options(arch: str, input_shape: tuple[int, int, int], classes: int,
            given: int | None = None, alone: bool = True) -> tuple[list[Freeze], int]:
    """(the counts the plan weighs, fewest frozen first: from the first stage on, or from
    none for a network without an earlier stage to keep, the last the head ``alone`` (else
    every layer before it frozen, with epochs); or the ``given`` count alone; the layers
    before the head), from one pass over the shapes."""
    infos = layer_shapes(arch, input_shape, classes)
    found = _candidates(infos)
    if given is None:
        kept = found[1:] if len(found) > 2 else found
        if alone:  # in place of epochs through every layer before the head, frozen
            kept[-1] = Freeze(found[-1].layers, found[-1].share, "none: the head alone", True)
        return kept, found[-1].layers
    total = sum(info.macs for info in infos) or 1
    return [Freeze(given, sum(info.macs for info in infos[:given]) / total, "given")], \
        found[-1].layers


def _candidates(infos: list[LayerInfo]) -> list[Freeze]:
    head = next(index for index, info in enumerate(infos) if isinstance(info.layer, Flatten))
    total = sum(info.macs for info in infos) or 1
    found = [Freeze(0, 0.0, "none")]
    done, side, width = 0, None, infos[0].in_shape[-1]
    for index, info in enumerate(infos[:head]):
        now = info.out_shape[-1]
        if side is not None and now < side and done / total - found[-1].share >= SAME_SHARE:
            found.append(Freeze(index, done / total, f"the first {index} layers (maps of "
                                f"1/{max(1, round(width / side))} of the image's side or more)"))
        done, side = done + info.macs, now
    every = Freeze(head, done / total, f"all {head} layers before the head")
    if done / total - found[-1].share >= SAME_SHARE or len(found) == 1:
        found.append(every)
    else:  # the last point is the head's
        found[-1] = every
    return found


def reason(chosen: Freeze, default: Freeze, fits: bool) -> str:
    """Why the plan froze ``chosen``: the default, or more because the budget pressed
    (``fits``: the planned epochs then fit at `SIDE_FLOOR` px or more)."""
    if chosen.alone:
        return ("no layer trains but the head, fitted on features computed once (no "
                "epochs): " + (f"no epochs fit the budget at {SIDE_FLOOR} px or more, and "
                               "this does" if fits else "nothing else comes as close to the "
                               "budget at as large an image side"))
    if chosen.layers == 0:
        return "every layer trains: the network has no earlier stage to keep"
    if chosen == default:
        return (f"{chosen.where} keep their trained weights: as accurate and faster on "
                "photos (bench/RESULTS.md)")
    return (f"{chosen.where} keep their trained weights: steps cost ~"
            f"{chosen.step_factor:.0%} of a full one, so "
            + (f"the planned epochs fit the budget at {SIDE_FLOOR} px or more" if fits else
               "the budget holds the most epochs at the largest image size"))
