"""Public names a package imports on first use, so that importing the package (and the
command line's ``--help``) does not import torch.

A package's ``__init__`` names each export and the module it lives in; the module is
imported when the name is first read (PEP 562's module ``__getattr__``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """(``__getattr__``, ``__dir__``) for ``package``, whose ``exports`` map each public
    name to the module that defines it: ``module`` (the same name there),
    ``module:other`` (another name there) or ``module:*`` (the module itself).

    Raises:
        AttributeError: from ``__getattr__``, for a name the package does not export.
    """
    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = exports[name].partition(":")
        found = importlib.import_module(module)
        value = found if attribute == "*" else getattr(found, attribute or name)
        setattr(importlib.import_module(package), name, value)  # read once
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(importlib.import_module(package))) | set(exports))

    return __getattr__, __dir__
