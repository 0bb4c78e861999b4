"""Exceptions that end a command with a message instead of a traceback.

CLIs catch them, print the message on one line and exit with :attr:`EmotionError.exit_code`.
"""

__all__ = ["EmotionError", "TrainingInterrupted", "first_line"]


class EmotionError(Exception):
    """A problem the user can fix: the message names the thing and what to do."""

    exit_code = 2


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
