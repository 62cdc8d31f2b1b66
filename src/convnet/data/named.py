"""The datasets convnet knows by name, and what each one is: read by `convnet datasets`
without torch (`convnet.data.sources` loads them)."""

from __future__ import annotations

BUILT_IN = {
    "digits": "10,000 real MNIST handwritten digits, 28×28×1, 10 classes, 8,000 train / "
              "2,000 test; shipped in the package",
    "shapes": "generated X, O, +, square, triangle, line; 28×28×1, 6 classes; options "
              "size, train, test (images per class), seed",
    "x-or-not-x": "the texts' X-or-not-X: generated X against other shapes, 2 classes; "
                  "same options as shapes",
}
# downloaded once into the cache (`convnet.data.standard`)
STANDARD = {
    "mnist": "MNIST (LeCun et al.): 70,000 handwritten digits, 28×28×1, 10 classes; "
             "downloaded once (~11 MB)",
    "fashion-mnist": "Fashion-MNIST (Xiao et al.): 70,000 clothing images, 28×28×1, "
                     "10 classes; downloaded once (~30 MB)",
    "cifar10": "CIFAR-10 (Krizhevsky): 60,000 photos, 32×32×3, 10 classes, binary release; "
               "downloaded once (~163 MB)",
}


def catalogue() -> dict[str, str]:
    """Built-in dataset names and what each one is."""
    return {**BUILT_IN, **STANDARD}
