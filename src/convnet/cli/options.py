"""`convnet train`'s options, generated from `TrainConfig`'s fields: their names, types,
choices, help and defaults are written once, in `convnet.train.config`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, Field, fields

import click

from convnet.train.config import TrainConfig

_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def flag(name: str) -> str:
    """``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def _base_type(spec: Field) -> type:
    """The field's type without ``| None`` (annotations are strings: `from __future__`)."""
    names = [part.strip() for part in str(spec.type).split("|")]
    return _TYPES[next(name for name in names if name != "None")]


def _default_text(spec: Field) -> str:
    default = spec.default if spec.default is not MISSING else None
    if default is None or isinstance(default, bool) and spec.metadata.get("cli_flag"):
        return ""
    return f" [{default}]"


def _option(spec: Field) -> Callable:
    kind, choices = _base_type(spec), spec.metadata.get("choices")
    help_text = spec.metadata["help"] + _default_text(spec)
    if kind is bool:
        negative = "--no-" + flag(spec.name)[2:]
        if spec.default is False:  # a plain switch, off unless given
            return click.option(flag(spec.name), is_flag=True, default=None, help=help_text)
        return click.option(f"{flag(spec.name)}/{negative}", default=None, help=help_text)
    click_type = click.Choice(list(choices)) if choices else kind
    return click.option(flag(spec.name), type=click_type, default=None, help=help_text)


def config_options(command: Callable) -> Callable:
    """Add one option per `TrainConfig` field; unset options arrive as None, so the
    config's own defaults (and a recipe's) apply."""
    for spec in reversed(fields(TrainConfig)):
        command = _option(spec)(command)
    return command


def config_from(options: dict[str, object]) -> TrainConfig:
    """The options that were given, as a config."""
    return TrainConfig.from_dict({k: v for k, v in options.items() if v is not None})


__all__ = ["config_from", "config_options", "flag"]
