"""What every CLI shares: user errors become one line on stderr and a non-zero exit status."""

from __future__ import annotations

import sys
import warnings
from typing import Callable, TypeVar

from emotion.errors import EmotionError

__all__ = ["user_errors_exit", "quiet_library_warnings"]

T = TypeVar("T")


def _user_error(exc: BaseException) -> EmotionError | None:
    # Hydra's instantiate wraps exceptions raised by the target; look through the chain.
    while exc is not None:
        if isinstance(exc, EmotionError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def user_errors_exit(fn: Callable[[], T]) -> T:
    """Run ``fn``; on an :class:`EmotionError` print ``error: …`` and exit with its code (2 for
    bad input), without a traceback."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - re-raised unless it is a user error
        err = _user_error(e)
        if err is None:
            raise
        print(f"error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)


def quiet_library_warnings() -> None:
    """Hide deprecation chatter from dependencies that users can do nothing about."""
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*litlogger.*")
