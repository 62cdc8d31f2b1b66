"""`convnet train`'s options, generated from `TrainConfig`'s fields: their names, types,
choices, help and defaults are written once, in `convnet.training.config`; and checks of
other commands' arguments."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import Field, fields
from pathlib import Path

import click

from convnet.errors import ConvnetError
from convnet.training.config import TrainConfig, field_kind

_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def flag(name: str) -> str:
    """``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def _default_text(spec: Field) -> str:
    return "" if spec.default is None else f" [{spec.default}]"


class _LearningRate(click.ParamType):
    """A number, or ``find``: the lr-find range test picks it first."""

    name = "float|find"

    def convert(self, value, param, ctx):
        if value == "find" or isinstance(value, float):
            return value
        try:
            return float(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number nor 'find'", param, ctx)


def _option(spec: Field) -> Callable:
    kind, choices = _TYPES[field_kind(spec)[0]], spec.metadata.get("choices")
    if spec.name == "lr":
        return click.option(flag(spec.name), type=_LearningRate(), default=None,
                            help=spec.metadata["help"] + " 'find': from `convnet lr-find`'s "
                            "range test, run first.")
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


def check_run_first(run: Path, images: tuple[Path, ...]) -> None:
    """`convnet predict IMAGE RUN` is an easy slip: name it instead of 'not a run folder'."""
    runs = [path for path in images if (path / "model.json").is_file()]
    if run.is_file() and runs:
        raise ConvnetError(f"{str(run)!r} is an image and {str(runs[0])!r} is a run folder: "
                           "the run comes first. Use: convnet predict RUN IMAGE [IMAGE ...].")


__all__ = ["check_run_first", "config_from", "config_options", "flag"]
