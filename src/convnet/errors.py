"""The one exception type that carries a user-facing, one-line message."""

from __future__ import annotations


class ConvnetError(ValueError):
    """A problem with the user's input: the message names it and says how to fix it.

    The command line prints the message on one line and exits non-zero, without a traceback.
    It subclasses ``ValueError`` so that Python callers can catch it the usual way.
    """


class SpecError(ConvnetError):
    """A network spec string that cannot be parsed, or that does not fit its input."""


class RunError(ConvnetError):
    """A run directory that is missing, incomplete, corrupt or from another version."""


class DiskFull(RunError):
    """A file could not be written for lack of room (a full disk, a quota, a file-size
    limit). The message names the folder, the bytes needed and the bytes free; ``folder``
    is where the write was going."""

    def __init__(self, message: str, folder: str, needed: int):
        super().__init__(message)
        self.folder, self.needed = folder, needed


class DataError(ConvnetError):
    """The data scan found problems and ``--strict`` was asked for; ``report`` lists them."""

    def __init__(self, message: str, report: object):
        super().__init__(message)
        self.report = report


class TrainingError(ConvnetError):
    """Training cannot go on (e.g. the loss became NaN); nothing was saved."""


class Interrupted(Exception):
    """Training was asked to stop (Ctrl-C, SIGTERM) and stopped after a whole step.

    Not a `ConvnetError`: nothing was wrong with the input. ``folder`` is the unfinished
    run that ``convnet train --resume`` continues, once the checkpoint is written.
    """

    def __init__(self, epoch: int, step: int, signal_name: str = "SIGINT"):
        super().__init__(f"interrupted at epoch {epoch} step {step}")
        self.epoch, self.step, self.signal_name = epoch, step, signal_name
        self.folder: str | None = None
