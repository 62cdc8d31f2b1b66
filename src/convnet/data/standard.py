"""The standard benchmark sets, downloaded once into the cache and verified by SHA-256."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from convnet.data.cache import cache_dir
from convnet.data.cifar import ARCHIVE, load_cifar_folder
from convnet.data.dataset import Dataset
from convnet.data.download import Remote, fetch
from convnet.data.idx import load_idx_folder

_MNIST_HASHES = {
    "train-images-idx3-ubyte.gz":
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz":
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz":
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz":
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
_FASHION_HASHES = {
    "train-images-idx3-ubyte.gz":
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte.gz":
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte.gz":
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz":
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}
_MNIST_BASES = ("https://yann.lecun.com/exdb/mnist/",  # official, often refuses robots
                "https://ossci-datasets.s3.amazonaws.com/mnist/",
                "https://storage.googleapis.com/cvdf-datasets/mnist/")
_FASHION_BASES = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                  "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/"
                  "data/fashion/")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]


def _remotes(hashes: dict[str, str], bases: tuple[str, ...]) -> list[Remote]:
    return [Remote(name, sha, tuple(base + name for base in bases))
            for name, sha in hashes.items()]


STANDARD: dict[str, list[Remote]] = {
    "mnist": _remotes(_MNIST_HASHES, _MNIST_BASES),
    "fashion-mnist": _remotes(_FASHION_HASHES, _FASHION_BASES),
    "cifar10": [Remote(ARCHIVE, "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
                       (f"https://www.cs.toronto.edu/~kriz/{ARCHIVE}",))],
}
def load_standard(name: str, progress: Callable[[int, int], None] | None = None) -> Dataset:
    """Download (first use only), verify and parse a standard set."""
    folder = cache_dir("downloads", name)
    for remote in STANDARD[name]:
        fetch(remote, folder, progress=progress)
    return parse_standard(name, folder)


def parse_standard(name: str, folder: Path) -> Dataset:
    if name == "cifar10":
        dataset = load_cifar_folder(folder, name="cifar10")
        return replace(dataset, source=f"CIFAR-10 binary release ({folder})")
    dataset = load_idx_folder(folder, name=name)
    if name == "fashion-mnist":
        return replace(dataset, classes=list(FASHION_CLASSES), flip_ok=True,
                       source=f"Fashion-MNIST ({folder})")
    return replace(dataset, source=f"MNIST ({folder})")
