"""A training state on disk: tensors in safetensors, everything else in JSON, never pickle.

`TrainState.state_dict()` is a tree of dicts, lists, tuples, tensors and plain values.
`encode` splits it into a JSON tree, where each tensor is replaced by ``{"tensor": key}``,
and a flat ``{key: tensor}`` for safetensors; `decode` puts the two back together. A tensor
keeps its memory layout: one stored in another order than row-major (a channels-last
weight, and the optimizer moments that follow it) records its strides and comes back with
them, because a resumed step must see the tensors laid out as the uninterrupted run did
(CPU kernels take other, differently rounding paths for mixed layouts). Dicts
with keys that are not strings (the optimizer's per-parameter state) and tuples (Adam's
betas) are tagged so that they come back as they were.

A checkpoint is a numbered pair of files, each written atomically (temp file, fsync,
rename; then the folder is fsynced): ``checkpoint.N.safetensors``, then ``checkpoint.N.json``,
which names the SHA-256 of the tensors it goes with. Only when the new pair is complete are
the older pairs removed, so a crash at any point leaves the previous checkpoint whole, and
`load` takes the newest pair that reads back and matches.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from convnet.atomic import write_atomic
from convnet.errors import ConvnetError, RunError
from convnet.training.generations import exists, info, names, numbers

__all__ = ["decode", "encode", "exists", "info", "load", "remove", "save"]

FORMAT = 2  # bump when a checkpoint written now could not be read back the same way
READS = {1, 2}  # 1: before tensors kept their strides (still read, as row-major)


def _row_major(shape: torch.Size) -> tuple[int, ...]:
    """The strides of a row-major tensor of ``shape`` (as `torch.empty` makes it)."""
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def _dense_strides(tensor: torch.Tensor) -> bool:
    """Whether ``tensor`` fills its memory exactly, in some order of its dimensions (so
    that its strides can be rebuilt with `torch.empty_strided`)."""
    expected = 1
    for stride, size in sorted((s, n) for s, n in zip(tensor.stride(), tensor.shape)
                               if n > 1):
        if stride != expected:
            return False
        expected *= size
    return True


def encode(tree: Any, tensors: dict[str, torch.Tensor], path: str = "") -> Any:
    """The JSON form of ``tree``; its tensors are added to ``tensors`` under their path."""
    if isinstance(tree, torch.Tensor):
        key = path or "root"
        tensors[key] = tree.detach().cpu().contiguous()
        if tree.stride() == _row_major(tree.shape) or not _dense_strides(tree):
            return {"tensor": key}  # row-major already (or a view: saved as row-major)
        return {"strided": [key, list(tree.stride())]}
    if isinstance(tree, dict):
        if all(isinstance(key, str) for key in tree):
            return {"dict": {key: encode(value, tensors, f"{path}/{key}")
                             for key, value in tree.items()}}
        return {"pairs": [[key, encode(value, tensors, f"{path}/{key}")]
                          for key, value in tree.items()]}
    if isinstance(tree, list | tuple):
        items = [encode(value, tensors, f"{path}/{n}") for n, value in enumerate(tree)]
        return {"tuple" if isinstance(tree, tuple) else "list": items}
    if tree is None or isinstance(tree, bool | int | float | str):
        return {"value": tree}
    raise ConvnetError(f"A checkpoint holds tensors, numbers, strings, None and lists, tuples "
                       f"and dicts of them. Received: a {type(tree).__name__} at "
                       f"{path or 'the root'}.")


def decode(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of `encode`."""
    (kind, value), = tree.items()
    match kind:
        case "tensor":
            return tensors[value]
        case "strided":
            key, strides = value
            flat = tensors[key]
            return torch.empty_strided(flat.shape, strides, dtype=flat.dtype).copy_(flat)
        case "dict":
            return {key: decode(item, tensors) for key, item in value.items()}
        case "pairs":
            return {key: decode(item, tensors) for key, item in value}
        case "list":
            return [decode(item, tensors) for item in value]
        case "tuple":
            return tuple(decode(item, tensors) for item in value)
        case "value":
            return value
    raise RunError(f"The checkpoint holds a part of unknown kind {kind!r}: it is damaged, or "
                   "was written by a newer convnet. Resume it with that version, or train anew.")


def _fsync_folder(folder: Path) -> None:
    """Make the renames in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _clear_temp(folder: Path) -> None:
    """Remove what a process killed inside a checkpoint write left: its temp files (one
    process writes a run folder, and it is not writing now)."""
    for path in folder.glob(".checkpoint.*.tmp"):
        path.unlink(missing_ok=True)


def save(folder: Path, state: dict[str, Any], info: dict[str, Any]) -> None:
    """Write ``state`` (a `TrainState.state_dict()`) and ``info`` (plain JSON: the config,
    the data fingerprint, where training stands) as the folder's newest checkpoint, then
    remove the older ones."""
    _clear_temp(folder)
    tensors: dict[str, torch.Tensor] = {}
    tree = encode(state, tensors)
    data = save_safetensors(tensors)
    meta = {"format": FORMAT, "tensors_sha256": hashlib.sha256(data).hexdigest(),
            "info": info, "state": tree}
    older = numbers(folder)
    tensor_name, meta_name = names(older[0] + 1 if older else 1)
    try:
        write_atomic(folder / tensor_name, data)
        write_atomic(folder / meta_name, json.dumps(meta).encode())  # the pair is complete
    except BaseException:  # e.g. no room: the older pair stays the newest, and whole
        (folder / tensor_name).unlink(missing_ok=True)
        raise
    _fsync_folder(folder)
    for number in older:
        for name in names(number):
            (folder / name).unlink(missing_ok=True)


def _read(folder: Path, number: int) -> tuple[dict[str, Any], dict[str, Any]]:
    tensor_path, meta_path = (folder / name for name in names(number))
    try:
        meta = json.loads(meta_path.read_text())
        data = tensor_path.read_bytes()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunError(f"{meta_path} cannot be read ({type(error).__name__}); the checkpoint "
                       "is damaged.") from None
    if not isinstance(meta, dict) or meta.get("format") not in READS:
        found = meta.get("format") if isinstance(meta, dict) else "?"
        raise RunError(f"{meta_path} is checkpoint format {found}; this convnet reads format "
                       f"{' or '.join(map(str, sorted(READS)))}. Resume it with the convnet "
                       "that wrote it, or train anew.")
    if hashlib.sha256(data).hexdigest() != meta.get("tensors_sha256"):
        raise RunError(f"{tensor_path} does not match {meta_path} (truncated, or written "
                       "only in part); the checkpoint is damaged.")
    try:
        state = decode(meta["state"], load_safetensors(data))
    except (SafetensorError, KeyError, TypeError, ValueError) as error:
        raise RunError(f"{meta_path} cannot be decoded ({error}); the checkpoint is "
                       "damaged.") from None
    return state, meta["info"]


def load(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(state dict, info) of the folder's newest complete checkpoint. A newer one that a
    crash cut short is passed over for the one before it, which is still whole.

    Raises:
        RunError: when no checkpoint there can be read, naming why.
    """
    found = numbers(folder)
    if not found:
        raise RunError(f"{folder} holds no checkpoint to resume from.")
    error: RunError | None = None
    for number in found:
        try:
            return _read(folder, number)
        except RunError as failure:
            error = error or failure
    assert error is not None
    raise error


def remove(folder: Path) -> None:
    """Delete every checkpoint file (the run is finished)."""
    _clear_temp(folder)
    for number in numbers(folder):
        for name in names(number):
            (folder / name).unlink(missing_ok=True)
