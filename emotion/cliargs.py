"""Argument types the command-line tools share: each turns a string into a typed value, or raises
``argparse.ArgumentTypeError`` with one line that says what to give (argparse prints it, exit 2)."""

from __future__ import annotations

import argparse

from emotion.inference.detection import MinFace

__all__ = ["fraction", "min_face", "positive_int", "seconds"]


def min_face(s: str) -> MinFace:
    try:
        return MinFace.parse(s)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def seconds(s: str) -> float:
    if s.lower() in ("off", "none", "0"):
        return 0.0
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a number of seconds (or 'off')") from None
    if not 0 <= v < 3600:
        raise argparse.ArgumentTypeError(f"must be between 0 and 3600 s, got {v}")
    return v


def positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def fraction(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a number") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {v}")
    return v
