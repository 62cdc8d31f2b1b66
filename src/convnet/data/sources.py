"""What ``--data`` accepts and how each kind is loaded: the built-in sets, the official files
of MNIST-like and CIFAR-10 sets, and folders of images (class folders, train/test splits,
CSV labels)."""


from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import replace
from importlib import resources
from pathlib import Path

import torch

from convnet.data.cifar import has_cifar_files, load_cifar_folder
from convnet.data.dataset import Dataset, Split
from convnet.data.duplicates import Finder
from convnet.data.folders import load_folder
from convnet.data.folders import load_labelled as load_folder_labelled
from convnet.data.idx import has_idx_files, load_idx_folder
from convnet.data.layout import Layout, find_layout
from convnet.data.preprocess import Preprocess
from convnet.data.rescale import sized
from convnet.data.scan import Progress
from convnet.data.shapes import load_shapes
from convnet.data.standard import STANDARD, load_standard
from convnet.errors import ConvnetError


def _digits() -> Dataset:
    folder = Path(str(resources.files("convnet.data") / "digits"))
    dataset = load_idx_folder(folder, name="digits")
    return Dataset("digits", dataset.classes, dataset.train, dataset.test,
                   source="built in: 10,000 MNIST digits (8,000 train / 2,000 test)",
                   flip_ok=False)


_SHAPE_OPTIONS = {"size": int, "train": int, "test": int, "seed": int}
# name -> (loader, the options it takes); what each one is: `convnet.data.named`
_BUILT_IN: dict[str, tuple[Callable[..., Dataset], dict[str, type]]] = {
    "digits": (_digits, {}),
    "shapes": (lambda **kw: load_shapes(variant="shapes", **kw), _SHAPE_OPTIONS),
    "x-or-not-x": (lambda **kw: load_shapes(variant="x-or-not-x", **kw), _SHAPE_OPTIONS),
    **{name: (lambda name=name: load_standard(name), {}) for name in STANDARD},
}


def parse_data_arg(text: str) -> tuple[str, dict[str, int]]:
    """``"shapes:size=32,seed=1"`` -> ``("shapes", {"size": 32, "seed": 1})``."""
    name, _, rest = text.partition(":")
    name = name.strip().lower()
    if name not in _BUILT_IN:
        close = difflib.get_close_matches(name, list(_BUILT_IN), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConvnetError(f"data must be a built-in dataset ({', '.join(_BUILT_IN)}) or an "
                           f"existing folder.{hint} Received: data={text!r}.")
    allowed = _BUILT_IN[name][1]
    options: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, equals, value = item.partition("=")
        if key not in allowed or not equals:
            raise ConvnetError(f"data={name!r}: options are written key=value with keys "
                               f"{', '.join(allowed) or '(none)'}. Received: {item!r}.")
        try:
            options[key] = allowed[key](value)
        except ValueError:
            raise ConvnetError(f"data={name!r}: option {key} must be an integer. "
                               f"Received: {value!r}.") from None
    return name, options


def _load_path(path: Path, image_size: int | None, resize: str,
               progress: Progress | None, prep: Preprocess | None, near: bool,
               finders: Sequence[Finder], near_progress: Progress | None) -> Dataset:
    if not path.exists():
        raise ConvnetError(f"data={str(path)!r} does not exist. Give an existing "
                           "folder or a built-in dataset name (see `convnet datasets`).")
    if path.is_dir() and has_idx_files(path):
        return _held(load_idx_folder(path), image_size, resize, prep)
    if path.is_dir() and has_cifar_files(path):
        return _held(load_cifar_folder(path), image_size, resize, prep)
    if path.is_file() and path.suffix.lower() != ".csv":
        raise ConvnetError(f"data={str(path)!r} is a file but not a .csv of path,label "
                           "rows. Give a folder with one sub-folder per class, or a CSV.")
    return load_folder(path, prep, image_size=image_size, resize=resize, progress=progress,
                       near=near, finders=finders, near_progress=near_progress)


def _is_path(data: str | Path) -> bool:
    """Whether ``data`` names a path rather than a built-in dataset."""
    text = str(data)
    written_as_path = isinstance(data, Path) or "/" in text or "\\" in text
    built_in = not written_as_path and text.partition(":")[0].lower() in _BUILT_IN
    return written_as_path or (Path(data).exists() and not built_in)


def _official_files(path: Path) -> bool:
    """Whether ``path`` is a folder of the official MNIST (IDX) or CIFAR-10 files."""
    return path.is_dir() and (has_idx_files(path) or has_cifar_files(path))


def folder_layout(data: str | Path) -> Layout | None:
    """The files of ``data`` when it is a folder (or CSV) of class folders, decoded at a
    size of our choosing; None for built-in names and IDX or CIFAR folders."""
    path = Path(data)
    if not _is_path(data) or not path.exists() or path.is_file() and \
            path.suffix.lower() != ".csv":
        return None
    return None if _official_files(path) else find_layout(path)


def with_channels(dataset: Dataset, channels: int) -> Dataset:
    """``dataset`` with ``channels`` per image: grayscale replicated to RGB, as a colour
    network needs; its preprocessing then decodes files in colour too.

    Raises:
        ConvnetError: for colour images where one channel is asked.
    """
    have = dataset.input_shape[2]
    if have == channels:
        return dataset
    if have != 1 or channels != 3:
        raise ConvnetError(f"data={dataset.name!r} has {have}-channel images and the network "
                           f"takes {channels}; only grayscale to colour is converted.")

    def rgb(split: Split | None) -> Split | None:
        return None if split is None else \
            Split(split.images.expand(-1, 3, -1, -1).contiguous(), split.labels)

    prep = None if dataset.preprocess is None else replace(dataset.preprocess, channels=3)
    return replace(dataset, train=rgb(dataset.train), val=rgb(dataset.val),
                   test=rgb(dataset.test), preprocess=prep)


def portable(data: str | Path) -> str:
    """``data`` as it loads again from any working folder: a path made absolute, a
    built-in name unchanged. What a run records."""
    return str(Path(data).absolute()) if _is_path(data) else str(data)


def labelled(data: str | Path, classes: list[str], preprocess: Preprocess,
             aliases: list[str] | None = None) -> tuple[Split, str]:
    """Labelled images to score a model of ``classes`` on, and a description of them.

    A folder or CSV of class folders gives its test/ images, or all of them when it has no
    test/ (so a folder of a few classes, or only test/, works); any other ``data`` gives its
    test split. Labels are mapped to the model's class order by name.

    Raises:
        ConvnetError: for classes the model does not know, or data without test images.
    """
    path = Path(data)
    if _is_path(data) and path.exists() and not _official_files(path):
        return load_folder_labelled(path, classes, preprocess, aliases)
    dataset = load(data, preprocess=preprocess)
    if dataset.test is None:
        raise ConvnetError(f"data={dataset.name!r} has no test split to evaluate on. Give a "
                           "dataset with test files (t10k-* for IDX folders), or a folder of "
                           "labelled images.")
    unknown = [name for name in dataset.classes if name not in classes]
    if unknown:
        raise ConvnetError(f"The data's classes {dataset.classes} are not the run's "
                           f"{classes}. Evaluate on data with the run's classes.")
    remap = torch.tensor([classes.index(name) for name in dataset.classes])
    test = Split(dataset.test.images, remap[dataset.test.labels])
    return test, f"{dataset.name} test"


def load(data: str | Path = "digits", *, image_size: int | None = None, resize: str = "crop",
         progress: Progress | None = None, preprocess: Preprocess | None = None,
         near: bool = False, finders: Sequence[Finder] = (),
         near_progress: Progress | None = None, **options: int) -> Dataset:
    """Load a dataset by name or from a path.

    A built-in name wins over a folder of the same name (write ``./digits`` for the folder).

    Args:
        data: a built-in name, optionally with options (``"shapes:size=32"``); a standard
            set (``mnist``, ``fashion-mnist``, ``cifar10``; downloaded once); or a path: a
            folder with one sub-folder per class (optionally under train/ val/ test/), a CSV
            of path,label rows, or a folder of the official MNIST/CIFAR-10 files.
        image_size: side in pixels that the images are resized to (default: from the data;
            a folder is decoded at it, data held in memory is resampled:
            `convnet.data.rescale`).
        resize: ``crop`` (centre crop to the aspect ratio) or ``pad`` (letterbox).
        progress: called with (files done, files in all) while a folder is decoded.
        preprocess: exactly how to decode folder images (a run's own), instead of the above;
            data held in memory is resampled to its height and width.
        near: search a folder for near-duplicates too (seconds per 10,000 images, once per
            decode: kept in the cache, and reported by every later load).
        finders: more ways to find near-duplicates when ``near`` (ImageNet features:
            `convnet.features.copies`), each kept in the cache like the search.
        near_progress: called with (done, all) as the near-duplicate search goes.
        options: options for a generated dataset, e.g. ``size=32, seed=1``.

    Raises:
        ConvnetError: for an unknown name, a missing path or data it cannot read.
    """
    path = Path(data)
    if _is_path(data):
        return _load_path(path, image_size, resize, progress, preprocess, near, finders,
                          near_progress)
    name, parsed = parse_data_arg(str(data))
    allowed = _BUILT_IN[name][1]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConvnetError(f"Dataset {name!r} takes the options {', '.join(allowed) or '(none)'}"
                           f". Received: {', '.join(unknown)}.")
    return _held(_BUILT_IN[name][0](**{**parsed, **options}), image_size, resize, preprocess)


def _held(dataset: Dataset, image_size: int | None, resize: str,
          prep: Preprocess | None) -> Dataset:
    """Data held in memory as ``prep`` would decode a file (a run's own: its size, and
    grayscale replicated for a colour network), else at ``image_size``."""
    dataset = sized(dataset, image_size, resize, prep)
    return dataset if prep is None else with_channels(dataset, prep.channels)
