"""Exceptions that end a command with a message instead of a traceback.

CLIs catch them, print the message on one line and exit with :attr:`EmotionError.exit_code`.
"""

__all__ = ["EmotionError", "TrainingInterrupted"]


class EmotionError(Exception):
    """A problem the user can fix: the message names the thing and what to do."""

    exit_code = 2


class TrainingInterrupted(EmotionError):
    """Training was stopped by a signal; the message says how to resume."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
