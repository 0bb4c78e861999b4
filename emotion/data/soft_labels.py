"""Teacher probabilities for the training faces, stored beside the recipe that learns from them.

A distilled student (``model.distill``) reads one row per training face. The file is small (28,709
× 7 as fp16, about 400 KB), so it is committed and a student recipe runs without its teachers. It
records a fingerprint of the faces it was made for: rows are matched to faces by position, so a
file made for another training set must be refused, not silently misaligned.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from emotion.errors import EmotionError
from emotion.io import atomic_path

__all__ = ["faces_fingerprint", "load_soft_labels", "save_soft_labels"]


def faces_fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """A hash of the faces and labels, in order."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def save_soft_labels(path: str | os.PathLike, probs: np.ndarray, images: np.ndarray, labels: np.ndarray,
                     teachers: list[str]) -> Path:
    """Write ``probs`` (faces × classes, rows summing to 1) as fp16, with the faces' fingerprint."""
    probs = np.asarray(probs, dtype=np.float32)
    if probs.shape[0] != len(labels):
        raise ValueError(f"{probs.shape[0]} rows of probabilities for {len(labels)} faces")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, probs=probs.astype(np.float16), fingerprint=np.str_(faces_fingerprint(images, labels)),
                            teachers=np.array(teachers, dtype=np.str_))
    return path


def load_soft_labels(path: str | os.PathLike, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The probabilities in ``path`` as float32, renormalised, after checking they were made for these faces.

    Raises:
        EmotionError: the file is missing, unreadable, or was made for other faces.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise EmotionError(f"data.soft_labels={str(path)!r}: no such file. Make one with "
                           "experiments/make_soft_labels.py, or pass the committed one.")
    try:
        with np.load(path, allow_pickle=False) as z:
            probs, fingerprint = z["probs"].astype(np.float32), str(z["fingerprint"])
    except (OSError, ValueError, KeyError, EOFError) as e:
        raise EmotionError(f"data.soft_labels={str(path)!r} is not a soft-label file ({e}).") from None
    if probs.shape[0] != len(labels) or fingerprint != faces_fingerprint(images, labels):
        raise EmotionError(f"data.soft_labels={str(path)!r} was made for another training set "
                           f"({probs.shape[0]} rows, this one has {len(labels)} faces): "
                           "make it again for this data.root.")
    return probs / probs.sum(axis=1, keepdims=True)
