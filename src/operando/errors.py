"""Errors raised by operando.

Every error a user can trigger with bad input is an :class:`OperandoError`. The message
names *where* the problem is (a file, a field or a parameter), *what* is wrong and *how to
fix it*, so the CLI can print it on one line and exit with code 2 without a traceback.

Numerical failures that are not the user's fault (a solver diverging, an optimiser
stalling) are reported as values (a result object with a status) where possible; when a
caller asks for them to be raised, they raise :class:`ConvergenceError`.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

__all__ = [
    "ConvergenceError",
    "DataError",
    "FileFormatError",
    "OperandoError",
    "ParameterError",
    "check_choice",
]


class OperandoError(Exception):
    """Base class of all errors operando raises on purpose.

    Parameters
    ----------
    what
        What is wrong, e.g. ``"contains 3 NaN pixels"``.
    where
        The file, field or parameter concerned, e.g. ``"data.h5: variable 'images'"``.
    fix
        What the user can do about it, e.g. ``"mask or interpolate the NaN pixels first"``.
    """

    exit_code: int = 2

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None):
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(self._format())

    def _format(self) -> str:
        msg = f"{self.where}: {self.what}" if self.where else self.what
        if self.fix:
            msg += f" (fix: {self.fix})"
        return msg


class DataError(OperandoError, ValueError):
    """The data are invalid: wrong shape or dims, NaN/inf values, unsorted times, ..."""


class FileFormatError(OperandoError, OSError):
    """A file is missing, unreadable, corrupt or of an unsupported format."""


class ParameterError(OperandoError, ValueError):
    """An option or parameter is invalid (unknown noise spec, degree < 1, ...)."""


class ConvergenceError(OperandoError, RuntimeError):
    """A solver or optimiser failed and the caller asked for failures to raise."""

    exit_code = 3


def check_choice(value: Any, choices: Collection[Any], *, where: str, name: str = "") -> None:
    """Raise :class:`ParameterError` unless ``value`` is one of ``choices``.

    The message reads ``"{where}: {name} is {value!r} (fix: 'a' or 'b')"``.
    """
    if value not in choices:
        what = f"{name} is {value!r}" if name else f"{value!r}"
        raise ParameterError(what, where=where, fix=" or ".join(repr(c) for c in choices))
