"""The one exception type for user errors (bad input or configuration).

CLIs catch it, print its message on one line and exit with status 2, without a traceback.
"""

__all__ = ["EmotionError"]


class EmotionError(Exception):
    """A problem the user can fix: the message names the thing and what to do."""
