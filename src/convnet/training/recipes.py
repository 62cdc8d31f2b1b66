"""Recipes: named sets of training options, for `--recipe NAME`.

A recipe fills in options the user did not give; anything given explicitly wins. The run's
model.json records the recipe's name and every resolved option.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from convnet.errors import ConvnetError


@dataclass(frozen=True)
class Recipe:
    about: str
    options: dict[str, Any]


# Both CIFAR recipes follow the public CIFAR-10 speed-training literature (Page's
# "How to train your ResNet" series and Jordan's airbench): a small VGG-like net with batch
# norm after pooling and GELU, a fixed whitening first layer, Nesterov SGD with a short
# warm-up then decay, label smoothing 0.2, flips and 2-pixel shifts, and flip test-time
# augmentation. Trained on all of `train/` (no validation split): the test split scores it.
_CIFAR = {"optimizer": "sgd", "momentum": 0.9, "schedule": "onecycle",
          "label_smoothing": 0.2, "augment": "light", "flip": True, "shift": 2, "tta": "flip",
          "val_split": 0.0, "ema": 0.0}

RECIPES: dict[str, Recipe] = {
    "cifar-fast": Recipe(
        "CIFAR-10 in seconds on a GPU: the `cifar-fast` network (widths 64/256/256), "
        "10 epochs of batch 1024",
        {**_CIFAR, "arch": "cifar-fast", "epochs": 10, "batch_size": 1024, "lr": 0.8,
         "weight_decay": 5e-4 * 1024 / 512},
    ),
    "cifar-fast-cpu": Recipe(
        "the same recipe sized for a few CPU cores: the `cifar-fast-cpu` network (widths "
        "32/64/128) and batch 256, about 10 minutes on 2 cores for CIFAR-10",
        {**_CIFAR, "arch": "cifar-fast-cpu", "epochs": 10, "batch_size": 256, "lr": 0.2,
         "weight_decay": 5e-4},
    ),
}


def recipe_options(name: str) -> dict[str, Any]:
    """The options a recipe sets.

    Raises:
        ConvnetError: for an unknown recipe name.
    """
    recipe = RECIPES.get(name)
    if recipe is None:
        raise ConvnetError(f"recipe must be one of {', '.join(RECIPES)}. "
                           f"Received: recipe={name!r}.")
    return dict(recipe.options)
