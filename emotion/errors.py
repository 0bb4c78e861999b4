"""Exceptions that end a command with a message instead of a traceback, and the wrapper every
CLI runs in: :func:`user_errors_exit` prints the message (a line per problem) and exits with
:attr:`EmotionError.exit_code`.
"""

from __future__ import annotations

import sys
import warnings
from typing import Callable, TypeVar

__all__ = ["EmotionError", "TooLarge", "TrainingInterrupted", "first_line", "user_errors_exit",
           "quiet_library_warnings"]

T = TypeVar("T")


class EmotionError(Exception):
    """A problem the user can fix: the message names the thing and what to do."""

    exit_code = 2


class TooLarge(EmotionError):
    """An input over a size limit (an image's pixels or sides, a possible decompression bomb): the
    service answers it with 413, other user errors with 400."""


class TrainingInterrupted(EmotionError):
    """Training was stopped by a signal; the message says how to resume."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def first_line(e: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (at most ``limit`` characters), or its type's name
    when it has none: enough to say what went wrong inside a one-line error."""
    text = str(e).strip()
    return text.splitlines()[0][:limit] if text else type(e).__name__


def unexpected_failure(path: object, e: BaseException) -> str:
    """The one line for an unexpected exception met on one input, which must not cost the others theirs."""
    return (f"'{path}' failed with {type(e).__name__}: {first_line(e)} "
            "(a bug in emotion; please report it with this file).")


def _user_error(exc: BaseException) -> EmotionError | None:
    # Hydra's instantiate wraps exceptions raised by the target; look through the chain.
    while exc is not None:
        if isinstance(exc, EmotionError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def user_errors_exit(fn: Callable[[], T]) -> T:
    """Run ``fn``; on an :class:`EmotionError` print ``error: …`` (a line per problem) and exit with
    its code (2 for bad input), without a traceback."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - re-raised unless it is a user error
        err = _user_error(e)
        if err is None:
            raise
        for line in str(err).splitlines() or [""]:
            print(f"error: {line}", file=sys.stderr)
        sys.exit(err.exit_code)


def quiet_library_warnings() -> None:
    """Hide deprecation chatter from dependencies that users can do nothing about."""
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*litlogger.*")
