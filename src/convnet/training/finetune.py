"""Starting from trained weights: load them into a new network, then fit its new head on
features computed once (the body frozen), before every layer trains.

The head phase is cheap because the body runs once per image, not once per epoch: its
features (the pooled vector the fully connected layers see) are cached on disk under the
SHA-256 of the weights and the images, so a second run on the same photos at the same size
skips even that. The head is then fitted on those vectors: one fully connected layer as
logistic regression (`convnet.training.linear_head`), a deeper head by ``freeze_epochs``
passes of AdamW.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from convnet.allocator import pass_size
from convnet.data.cache import cache_dir
from convnet.data.dataset import Split, images_digest
from convnet.data.pixels import Normalization
from convnet.errors import ConvnetError
from convnet.network import Network
from convnet.network.folding import folded
from convnet.training import compiler_import
from convnet.training.linear_head import FOLDS, fit_linear, inputs, linear
from convnet.training.speed import autocast

FREEZE_EPOCHS = 30  # head-only passes over the cached features (they take seconds)
HEAD_LR, HEAD_DECAY, HEAD_BATCH = 3e-3, 1e-2, 64


@dataclass(frozen=True)
class Start:
    """Trained weights to start from, and what they expect."""

    name: str  # as the user gave it: imagenet, a run folder, a file
    arch: str  # the network they belong to (a preset name or spec)
    weights: dict[str, torch.Tensor]
    normalization: Normalization | None  # the input scaling they were trained with
    identity: str  # a SHA-256 that names the weights (for the feature cache)
    classes: list[str] | None = None  # the classes of the head they come with


def load_into(network: Network, start: Start) -> list[str]:
    """Copy ``start``'s weights into ``network``; the head is left new where its shape
    differs (other classes). Returns the names of the tensors left new.

    Raises:
        ConvnetError: when any tensor of the body is missing or of another shape.
    """
    own = network.state_dict()
    head = {name for name in own if name.startswith(_head_prefixes(network))}
    differences = [d for d in network.differences(start.weights)
                   if d.split(" ")[0] not in head]
    if differences:
        raise ConvnetError(f"init={start.name!r} does not fit arch={network.spec[:60]!r}: "
                           f"{'; '.join(differences[:4])}. Give the arch the weights were "
                           "trained as.")
    fresh = [name for name in head if name in start.weights and
             start.weights[name].shape != own[name].shape]
    kept = {name: tensor for name, tensor in start.weights.items() if name not in fresh}
    network.load_state_dict({**own, **kept})
    return sorted(fresh)


def _head_prefixes(network: Network) -> tuple[str, ...]:
    return tuple(f"body.{index}." for index in range(network.head_start, len(network.body)))


def features(network: Network, images: torch.Tensor, normalization: Normalization,
             identity: str, device: torch.device, dtype: torch.dtype | None = None
             ) -> torch.Tensor:
    """The body's output for uint8 images (N, C, H, W): (N, D, h, w) float32, on the CPU,
    computed once for these weights and images and then read from the cache. ``dtype``:
    autocast to it (the run's precision: bf16 passes took 0.55-0.8 of fp32's time for
    EfficientNet-Lite0 on a CPU with AVX-512 BF16, bench/HISTORY.md)."""
    def compute(body: Network, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"features": body.forward_features(x)}  # (b, D, h, w)
    return _cached(network, images, normalization, f"{identity}:{dtype}", device, dtype,
                   compute)["features"]


def embeddings(network: Network, images: torch.Tensor, normalization: Normalization,
               identity: str, device: torch.device, dtype: torch.dtype | None = None,
               views: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """What the classifier sees for uint8 images (N, C, H, W), and the same without the
    last activation (`Network.forward_embeddings`: the "unknown" detector's input): (V, N,
    D) each, float32 on the CPU, for ``views`` views (the image; then its mirror). Cached
    like `features`. For a head of one fully connected layer, this is all it needs."""
    def compute(body: Network, x: torch.Tensor) -> dict[str, torch.Tensor]:
        found = [body.forward_embeddings(view) for view in (x, x.flip(3))[:views]]
        return {"seen": torch.stack([seen for seen, _ in found]),  # (V, b, D)
                "raw": torch.stack([raw for _, raw in found])}
    found = _cached(network, images, normalization, f"{identity}:{dtype}:{views} views",
                    device, dtype, compute, dim=1)
    return found["seen"], found["raw"]


def _cached(network: Network, images: torch.Tensor, normalization: Normalization,
            identity: str, device: torch.device, dtype: torch.dtype | None,
            compute, dim: int = 0) -> dict[str, torch.Tensor]:
    """``compute`` (the network with its batch norms folded, a batch) on normalised
    batches of ``images`` in eval mode, concatenated along ``dim``, computed once for
    ``identity`` (the weights, the precision, what is computed) and these images, then
    read from the cache."""
    key = hashlib.sha256(identity.encode())
    key.update(images_digest(images).encode())
    path = cache_dir("features") / f"{key.hexdigest()[:32]}.safetensors"
    if path.is_file():
        try:
            return load_file(path)
        except Exception:  # noqa: BLE001 - a damaged cache entry is computed again
            path.unlink(missing_ok=True)
    body = folded(network, torch.channels_last)  # an eval-mode copy, as its batches
    was_training = body.training
    body.eval()
    norm = normalization.to(device)
    parts: list[dict[str, torch.Tensor]] = []
    with torch.inference_mode(), autocast(device, dtype):
        for chunk in images.split(pass_size(images, device)):
            x = norm(chunk.to(device).contiguous(memory_format=torch.channels_last))
            parts.append({name: found.float().cpu()
                          for name, found in compute(body, x).items()})
    body.train(was_training)
    found = {name: torch.cat([part[name] for part in parts], dim).contiguous()
             for name in parts[0]}
    save_file(found, str(path))
    return found


@dataclass(frozen=True)
class HeadFit:
    """How the new head was fitted on the cached features."""

    loss: float  # mean training cross-entropy as the fit ended
    how: str  # e.g. "logistic regression (L2 0.3, by 3-fold cross-validation)"
    strength: float | None = None  # the logistic regression's L2 strength (None: AdamW)


def fit_head(network: Network, split: Split, found: torch.Tensor, epochs: int,
             label_smoothing: float, seed: int, weights: torch.Tensor | None = None
             ) -> HeadFit:
    """Train the head alone on the body's cached features (N, D, h, w). A head of one
    fully connected layer is fitted as logistic regression (`convnet.training.linear_head`;
    ``epochs`` only needs to be 1 or more), from those features or from what it sees of
    several views of each image, (V, N, D) (`embeddings`); a deeper one by ``epochs``
    passes of AdamW. The body is not touched; the same seed gives the same head.
    ``weights`` (K,): each class's weight in the loss, as the run's epochs weigh it (an
    even sampler's expectation too); None weighs every image the same."""
    if linear(network) is not None:
        seen = found if found.dim() == 3 else inputs(network, found)[None]  # (V, N, D)
        loss, strength = fit_linear(network, seen, split.labels, label_smoothing, seed,
                                    weights)
        return HeadFit(loss, f"logistic regression (L2 {strength:g}, by {FOLDS}-fold "
                             "cross-validation)", strength)
    return HeadFit(_adamw(network, split, found, epochs, label_smoothing, seed, weights),
                   f"{epochs} head-only epoch{'s' if epochs != 1 else ''}")


def _adamw(network: Network, split: Split, found: torch.Tensor, epochs: int,
           label_smoothing: float, seed: int, weights: torch.Tensor | None = None) -> float:
    """``epochs`` passes of AdamW over the cached features; the last one's mean loss."""
    params = network.head_parameters
    optimizer = torch.optim.AdamW(params, lr=HEAD_LR, weight_decay=HEAD_DECAY)
    generator = torch.Generator().manual_seed(seed)
    device = params[0].device
    found, labels = found.to(device), split.labels.to(device)
    weights = None if weights is None else weights.to(device)
    head = network.body[network.head_start:]
    head.train()
    loss_sum, steps = 0.0, 0
    for _ in range(epochs):
        order = torch.randperm(len(labels), generator=generator).to(device)
        loss_sum, steps = 0.0, 0
        for index in order.split(HEAD_BATCH):
            logits = network.forward_head(found[index])  # (b, classes)
            loss = F.cross_entropy(logits.float(), labels[index], weight=weights,
                                   label_smoothing=label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            compiler_import.step(optimizer)  # no compiler imported by a step
            loss_sum, steps = loss_sum + loss.item(), steps + 1
    return loss_sum / max(steps, 1)


def head_scores(network: Network, found: torch.Tensor, labels: torch.Tensor
                ) -> tuple[float, float, float]:
    """`scores` of the head alone on cached features (N, D, h, w)."""
    network.eval()
    with torch.inference_mode():
        device = network.head_parameters[0].device
        logits = network.forward_head(found.to(device)).float().cpu()  # (N, classes)
    return scores(logits, labels)


def scores(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, float, float]:
    """(mean cross-entropy, accuracy, balanced accuracy: the mean recall over the classes
    present) of ``logits`` (N, classes) against ``labels`` (N,)."""
    right = logits.argmax(1) == labels  # (N,)
    recalls = [float(right[labels == label].float().mean()) for label in labels.unique()]
    return float(F.cross_entropy(logits, labels)), float(right.float().mean()), \
        sum(recalls) / max(1, len(recalls))
