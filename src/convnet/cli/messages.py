"""The library names Python arguments in its messages (``batch_size=0``); the command line
shows the flags the user typed (``--batch-size 0``)."""

from __future__ import annotations

import re
from dataclasses import fields

from convnet.cli.options import flag
from convnet.training.config import TrainConfig

# library arguments, beside the config's, that messages name and that are also flags
_OTHER = ("out", "at", "force", "opset", "batch", "maps")
_NAMES = tuple(spec.name for spec in fields(TrainConfig)) + _OTHER
# name=value where value is quoted, or runs to a space, comma, semicolon or closing bracket
# (a sentence's final full stop is not part of it)
_ASSIGN = re.compile(r"\b(" + "|".join(_NAMES) + r")=('[^']*'|\"[^\"]*\"|[^\s,;)]*[^\s,;).:])")
_SUBJECT = re.compile(r"^(" + "|".join(_NAMES) + r") (must|is|needs)\b")


def _replace(match: re.Match) -> str:
    name, value = match.group(1), match.group(2)
    if value in ("True", "False"):
        return flag(name) if value == "True" else "--no-" + flag(name)[2:]
    if value[:1] in "'\"" and value[-1:] == value[:1]:
        value = value[1:-1]
        if not value or " " in value:
            value = f"'{value}'"
    return f"{flag(name)} {value}"


def to_flags(message: str) -> str:
    """``"batch_size must be ... Received: batch_size=-1."`` ->
    ``"--batch-size must be ... Received: --batch-size -1."``"""
    message = _SUBJECT.sub(lambda m: f"{flag(m.group(1))} {m.group(2)}", message)
    return _ASSIGN.sub(_replace, message)
