"""The one exception a request is refused with: a status and one line that says what to do."""

from __future__ import annotations

__all__ = ["Refused"]


class Refused(Exception):
    """A request refused with ``status`` and one clear message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}
