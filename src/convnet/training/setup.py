"""Everything a training run is made of, built from a dataset and a config, with every
``auto`` resolved here, once: the device, the architecture, the validation rule, the class
balancing, the augmentation, test-time flips, precision and compilation."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from convnet.axes import hwc_to_chw
from convnet.data import balance
from convnet.data.augment import Augment, policy
from convnet.data.dataset import Dataset, Split, Validation
from convnet.data.pixels import Normalization
from convnet.errors import ConvnetError, SpecError
from convnet.network import LayerInfo, Network, build, layer_shapes, resolve_arch
from convnet.training.batches import Batches
from convnet.training.callbacks import EpochStats
from convnet.training.config import TrainConfig
from convnet.training.distributed import World, join, world
from convnet.training.finetune import (
    FREEZE_EPOCHS,
    HEAD_LR,
    HeadFit,
    Start,
    embeddings,
    features,
    fit_head,
    head_scores,
    load_into,
    scores,
)
from convnet.training.linear_head import fit_linear, linear
from convnet.training.loop import Loop
from convnet.training.memory import check_fits
from convnet.training.optim import make_optimizer, make_schedule
from convnet.training.speed import autocast_dtype, fused_options, maybe_compile
from convnet.training.state import TrainState, make_ema

WHITENING_SAMPLE = 10_000  # training images the whitening layer's filters are computed from


def pick_device(name: str) -> torch.device:
    """``auto`` -> cuda when torch sees a GPU, else cpu.

    Raises:
        ConvnetError: for ``cuda`` without a GPU.
    """
    if name == "cuda" and not torch.cuda.is_available():
        raise ConvnetError("device='cuda' was asked for but no CUDA GPU is available to "
                           "torch. Use device='cpu' or device='auto'.")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and world().active:  # each rank on its own GPU
        return torch.device("cuda", world().local_rank % torch.cuda.device_count())
    return torch.device(name)


def augmentation(config: TrainConfig, dataset: Dataset) -> Augment:
    """The policy's ops for this data, with any op the user set by hand."""
    ops = policy(config.augment, dataset.input_shape, dataset.flip_ok)
    overrides = {name: getattr(config, name)
                 for name in ("flip", "shift", "crop_scale", "rotate", "jitter", "cutout")
                 if getattr(config, name) is not None}
    height, width, _ = dataset.input_shape
    side = min(height, width)
    for name, most in (("shift", side // 2), ("cutout", side)):
        if overrides.get(name, 0) > most:  # the image would leave the frame, or be erased
            raise ConvnetError(f"{name}={overrides[name]} pixels is more than the "
                               f"{height}×{width} images allow; use {name}={most} or less.")
    return replace(ops, **overrides)


@dataclass
class Prepared:
    """A training run ready to start: what it trains on, and the objects that train."""

    device: torch.device
    arch: str  # the config's arch with ``auto`` resolved to a preset name
    network: Network
    normalization: Normalization
    validation: Validation
    train_split: Split
    val_split: Split | None
    balancing: str  # ``none``, ``weights`` or ``sampler``
    ops: Augment
    flip_tta: bool
    batches: Batches
    state: TrainState
    loop: Loop
    head_phase: dict[str, Any] | None = None  # fine-tuning: what the head-only epochs did

    @property
    def head_val_acc(self) -> float | None:
        """The new head's validation accuracy before epoch 1 (None: no head was fitted
        here, or no validation images)."""
        return (self.head_phase or {}).get("val_acc")

    def speed(self) -> dict[str, Any]:
        """How the steps ran, as recorded with the run."""
        dtype = self.loop.autocast_dtype
        return {"precision": "fp32" if dtype is None else str(dtype).removeprefix("torch."),
                "compile": self.loop.forward is not self.network,
                "channels_last": self.batches.memory_format == torch.channels_last,
                "fused_optimizer": bool(fused_options(self.device))}


def _layers(arch: str, dataset: Dataset, config: TrainConfig) -> list[LayerInfo]:
    """The layers for this data; a preset that ``auto`` picked and that does not fit the
    images is explained in terms of the images, since the user never named it."""
    try:
        return layer_shapes(arch, dataset.input_shape, len(dataset.classes))
    except SpecError as error:
        if config.arch.strip().lower() != "auto":
            raise
        height, width, channels = dataset.input_shape
        raise SpecError(
            f"The images are {height}×{width}×{channels}, too small for the {arch!r} preset "
            f"that arch='auto' picked for them ({str(error).split(':')[0]}). Give a larger "
            "image_size (e.g. image_size=28) for folder data, or an arch that fits "
            "such small images (e.g. arch='conv8k1-relu-fc').") from None


def _network(arch: str, dataset: Dataset, config: TrainConfig, device: torch.device,
             train_split: Split, normalization: Normalization) -> Network:
    network = build(arch, dataset.input_shape, len(dataset.classes)).to(device)
    if config.channels_last:
        network = network.to(memory_format=torch.channels_last)
    if network.has_whitening:  # its filters come from the training images' patches
        sample = train_split.images[:WHITENING_SAMPLE].to(device)
        network.fit_whitening(normalization.to(device)(sample))
    return network


def _parallel(network: Network, config: TrainConfig, here: World,
              device: torch.device) -> nn.Module:
    """The module the steps call: DistributedDataParallel over the ranks, or the network."""
    if config.sync_bn and device.type != "cuda":
        raise ConvnetError("sync_bn=True needs GPUs: torch's SyncBatchNorm runs on CUDA only. "
                           "Leave sync_bn off on CPUs.")
    if not here.active:
        return network
    from torch.nn.parallel import DistributedDataParallel

    if config.sync_bn:  # in place: the network and the DDP module share the new layers
        torch.nn.SyncBatchNorm.convert_sync_batchnorm(network)

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(network, device_ids=ids)


def _start_from(start: Start, network: Network, config: TrainConfig, train_split: Split,
                val_split: Split | None, normalization: Normalization,
                device: torch.device, fresh: bool, flip_tta: bool,
                weights: torch.Tensor | None, refit: bool) -> dict[str, Any]:
    """``start``'s weights in ``network``, batch norm frozen unless asked otherwise, and for
    a new run the head trained alone on the body's cached features (each class weighed by
    ``weights`` where given), then scored on the validation images' (``val_acc``: what the
    run is worth before any other layer moves, shown at once). ``refit``: the head alone
    may then learn from the validation images too (`_refit`)."""
    left_new = load_into(network, start)
    network.freeze_batchnorm(config.freeze_bn is not False)
    network.freeze_layers(config.frozen_layers or 0)
    epochs = FREEZE_EPOCHS if config.freeze_epochs is None else config.freeze_epochs
    phase: dict[str, Any] = {"new": left_new, "epochs": epochs if fresh else 0}
    if fresh and epochs:
        began = time.perf_counter()
        look = _Look(network, normalization, f"{start.identity}:{network.spec}", device,
                     autocast_dtype(config.precision, device))
        # the head alone (no epochs) is the run: both views of each training image, once,
        # for the head to learn from and for the "unknown" detector to reuse
        alone = config.epochs == 0 and linear(network) is not None
        found, phase["raw"] = look(train_split, 2 if alone and flip_tta else 1, alone)
        phase["features_seconds"] = round(time.perf_counter() - began, 2)
        fitted = fit_head(network, train_split, found, epochs, config.smoothing,
                          config.seed, weights)
        phase["loss"], phase["how"] = fitted.loss, fitted.how
        phase["train_acc"] = head_scores(network, found[0] if alone else found,
                                         train_split.labels)[1]
        if val_split is not None and len(val_split) and alone:
            scored, val_seen = _scored_alone(network, look, val_split, 2 if flip_tta else 1)
            phase.update(scored)
            if refit:
                _refit(network, (found, val_seen), (train_split, val_split), fitted, config,
                       weights, phase)
        elif val_split is not None and len(val_split):
            phase["val_loss"], phase["val_acc"], phase["val_balanced"] = head_scores(
                network, look(val_split, 1, alone)[0], val_split.labels)
        network.train()
        phase["seconds"] = round(time.perf_counter() - began, 2)
    return phase


def _scored_alone(network: Network, look: _Look, split: Split, views: int
                  ) -> tuple[dict[str, Any], torch.Tensor]:
    """The head alone on the validation images as the run scores them as it ends (fp32,
    each view, averaged): its loss and accuracy, and its logits (N, classes) and the
    detector's input (N, D), which the calibration and the detector then reuse
    (`convnet.make.write`); and what the classifier sees of them, (V, N, D), for `_refit`:
    with no epochs, only the head moves after this, refitted with these images."""
    seen, raw = replace(look, dtype=None)(split, views, True)  # (V, N, D), (N, D)
    device = network.head_parameters[0].device
    network.eval()
    with torch.inference_mode():
        logits = torch.stack([network.classifier(view.to(device)).float().cpu()
                              for view in seen]).mean(0)  # (N, classes)
    loss, accuracy, balanced = scores(logits, split.labels)
    return {"val_loss": loss, "val_acc": accuracy, "val_balanced": balanced,
            "val_logits": logits, "val_raw": raw}, seen


def _refit(network: Network, seen: tuple[torch.Tensor, torch.Tensor],
           splits: tuple[Split, Split], fitted: HeadFit, config: TrainConfig,
           weights: torch.Tensor | None, phase: dict[str, Any]) -> None:
    """The head alone, once scored on the validation images, fitted again on the training
    and validation images together (``seen``: what it sees of each, (V, N, D) and (V, n,
    D)) at the strength its folds chose. With no epochs to rank, the validation images
    have done their work: the score above, the calibration and the "unknown" detector's
    threshold are all taken from the head that never saw them (`convnet.make.write`),
    and the head the run keeps learns from every labelled image. Only where the plan held
    them out of the training images and a test split remains (`_refits`): a val/ folder
    the user made stays for validation alone, and without test images the validation
    images are what `evaluate` and the report score the run on. Over five random draws
    of the validation images (`python -m bench finetune head-refit`), the mean test
    accuracy went from 67.1% to 70.1% on six classes of 246 photos (96 px), 81.8% to 82.3%
    on 1,000 cat/dog photos (160 px) and 87.1% to 87.8% on four classes (128 px); the 90%
    prediction sets held the true class as often or more (0.887 to 0.894, 0.883 to 0.885,
    0.933 to 0.938), and the expected calibration error moved by about a point either way
    (0.061 to 0.073, 0.039 to 0.033, 0.032 to 0.038). On four folders unlike those, three
    gained (1.0 to 6.5 points) and one, of 15 images a class, lost 0.5 (bench/HISTORY.md,
    "The head alone refitted with its validation images")."""
    if fitted.strength is None:  # a deeper head, fitted by epochs: not refitted
        return
    train, val = splits
    labels = torch.cat([train.labels, val.labels])  # (N + n,)
    phase["loss"], _ = fit_linear(network, torch.cat(seen, dim=1), labels, config.smoothing,
                                  config.seed, weights, fitted.strength)
    phase["refit"] = len(labels)


@dataclass(frozen=True)
class _Look:
    """The body's view of a split, computed once (cached): its features (N, D, h, w), or
    for the head alone what the classifier sees, (V, N, D), and the detector's input."""

    network: Network
    normalization: Normalization
    identity: str  # the weights and the network: the cache's key
    device: torch.device
    dtype: torch.dtype | None

    def __call__(self, split: Split, views: int, alone: bool
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not alone:
            return features(self.network, split.images, self.normalization, self.identity,
                            self.device, self.dtype), None
        seen, raw = embeddings(self.network, split.images, self.normalization,
                               self.identity, self.device, self.dtype, views)
        return seen, raw.mean(0)  # (V, N, D), and (N, D) over the views as TTA averages


def _head_as_epoch_zero(state: TrainState, phase: dict[str, Any] | None) -> None:
    """A head fitted here is the run's "epoch 0": the epochs must beat it on the validation
    images to be kept (and with none planned, it is the run)."""
    if phase is not None and "train_acc" in phase:
        state.keep_start(EpochStats(0, phase["loss"], phase["train_acc"],
                                    phase.get("val_loss"), phase.get("val_acc"), HEAD_LR,
                                    phase["seconds"], 0.0,
                                    val_balanced=phase.get("val_balanced")))


def _refits(validation: Validation, dataset: Dataset) -> bool:
    """Whether the head alone may learn from its validation images once it is scored on
    them (`_refit`): held out of the training images by the run, with test images left
    to score the run on."""
    return validation.source == "held-out" and dataset.test is not None and \
        len(dataset.test) > 0


def _weighed(config: TrainConfig, split: Split, classes: int
             ) -> tuple[str, torch.Tensor | None]:
    """The run's ``balancing``, and each class's weight (K,) for the head fitted alone
    (None: even): it weighs the classes as the epochs will, by the loss, or (full batch,
    no sampler) by the loss in place of an even draw."""
    counts = balance.class_counts(split.labels, classes)
    balancing = balance.choose(config.balance, counts)
    return balancing, None if balancing == "none" else balance.loss_weights(counts)


def prepare(dataset: Dataset, config: TrainConfig, start: Start | None = None,
            fresh: bool = True) -> Prepared:
    """Build the network, the resident batches and the training state for ``config``.

    Seeds torch's global generator first, so the same config builds the same weights.
    ``start``: trained weights to begin from (`convnet.training.finetune`); ``fresh``: a new
    run, whose head is then fitted first (a resumed one has it in its checkpoint).
    """
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    validation = Validation.for_run(dataset, config.val_split, config.seed)
    train_split, val_split = validation.draw(dataset)
    arch = resolve_arch(config.arch, dataset.input_shape)
    check_fits(_layers(arch, dataset, config), hwc_to_chw(dataset.input_shape),
               min(config.batch_size, len(train_split)), len(train_split), device)
    normalization = start.normalization if start and start.normalization is not None \
        else Normalization.of(train_split.images)
    network = _network(arch, dataset, config, device, train_split, normalization)
    ops = augmentation(config, dataset)
    flip_tta = config.tta == "flip" or config.tta == "auto" and ops.flip
    balancing, weights = _weighed(config, train_split, len(dataset.classes))
    phase = None if start is None else _start_from(
        start, network, config, train_split, val_split, normalization, device, fresh,
        flip_tta, weights, _refits(validation, dataset))
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    here = join(device)
    if config.batch_size % here.size:
        raise ConvnetError(f"batch_size={config.batch_size} is the global batch, shared by "
                           f"{here.size} processes: it must divide by {here.size}. Use "
                           f"batch_size={config.batch_size // here.size * here.size or here.size}.")
    # batch_size is global: each of the processes takes its share of every step, so a run
    # sees the same batches (and keeps its learning rate) at any number of processes
    batches = Batches(train_split, normalization, ops, config.batch_size // here.size,
                      balancing, len(dataset.classes), device, memory_format, here.rank,
                      here.size)
    optimizer = make_optimizer(network, config, device)
    state = TrainState(network, optimizer,
                       make_schedule(optimizer, config, batches.steps * config.epochs),
                       make_ema(network, config.ema),
                       torch.Generator(device=device).manual_seed(config.seed + here.rank),
                       balanced=balancing != "none")
    if here.active:  # one global order (same seed everywhere), augmentation per rank
        state.order_generator = torch.Generator(device=device).manual_seed(config.seed)
    forward: nn.Module = maybe_compile(_parallel(network, config, here, device),
                                       config.compile, device)
    loop = Loop(state, batches, forward, autocast_dtype(config.precision, device),
                config.smoothing, config.epochs)
    _head_as_epoch_zero(state, phase)
    return Prepared(device, arch, network, normalization, validation, train_split, val_split,
                    balancing, ops, flip_tta, batches, state, loop, phase)
