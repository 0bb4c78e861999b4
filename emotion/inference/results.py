"""Typed results of multi-face inference, with a stable JSON form (``to_dict``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emotion.inference.trust.quality import UNCERTAIN, FaceQuality

__all__ = ["FaceResult", "ImageResult", "SCHEMA_VERSION"]

#: Bumped whenever the keys of :meth:`ImageResult.to_dict` change.
SCHEMA_VERSION = 3  # 2: video faces gained track, detected and smoothed; 3: predicted, uncertain, quality

Box = tuple[float, float, float, float]
Point = tuple[float, float]


def _r(v: float, nd: int = 2) -> float:
    return round(float(v), nd)


@dataclass(frozen=True)
class FaceResult:
    """One detected face and its expression.

    Attributes:
        box: ``(x1, y1, x2, y2)`` in pixels of the (EXIF-rotated) original image, clipped to it.
        score: the detector's face probability.
        landmarks: five ``(x, y)`` points: left eye, right eye, nose, mouth left, mouth right
            (left/right as seen in the image); ``None`` for a face given as a crop (no detector ran).
        label: the most probable class, or ``"uncertain"`` when the face is held back (see ``uncertain``).
        probabilities: class name → probability (sums to 1), kept for held-back faces too.
        crop: the 48×48 grayscale uint8 face the classifier saw (not part of the JSON).
        track: in a video, the face's track id, the same for one person across frames
            (:data:`~emotion.inference.video.tracker.NO_TRACK` until the tracker confirms it); ``None``
            for a photo.
        detected: in a video, whether the detector found the face in this frame (``False``: the
            box was carried from the track's last detections).
        smoothed: in a video, the track's smoothed probabilities up to this frame.
        quality: the face's :class:`~emotion.inference.trust.FaceQuality` (size, sharpness, pose, score,
            overall).
        uncertain: why the face has no label: ``"quality"`` (its quality is below the predictor's
            ``min_quality``) or ``"confidence"`` (its top probability is below ``abstain``); ``None``: labelled.
        saliency: after :meth:`~emotion.inference.FaceEmotionPredictor.explain`, where on the 48×48 face the
            evidence for ``predicted`` lies, (48, 48) in [0, 1] (not part of the JSON).
        explanation: where its saliency overlay PNG is: a file name in the output folder (the CLI's
            ``--explain``) or a ``data:`` URL (the service's ``explain=1``); ``None`` when not asked for.
    """

    box: Box
    score: float
    landmarks: tuple[Point, ...] | None
    label: str
    probabilities: dict[str, float]
    crop: np.ndarray | None = field(default=None, repr=False, compare=False)
    track: int | None = None
    detected: bool = True
    smoothed: dict[str, float] | None = None
    quality: FaceQuality | None = None
    uncertain: str | None = None
    saliency: np.ndarray | None = field(default=None, repr=False, compare=False)
    explanation: str | None = None

    @property
    def predicted(self) -> str:
        """The most probable class, whether or not the face is held back."""
        return max(self.probabilities, key=self.probabilities.get)

    @property
    def smoothed_label(self) -> str:
        """The most probable class of the smoothed series (the predicted class for a photo)."""
        return self.predicted if self.smoothed is None else max(self.smoothed, key=self.smoothed.get)

    @property
    def confidence(self) -> float:
        """Probability of the predicted class."""
        return self.probabilities[self.predicted]

    @property
    def is_uncertain(self) -> bool:
        return self.label == UNCERTAIN

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (rounded: pixels to 0.01, probabilities to 1e-6): ``box``, ``score``, ``landmarks``,
        ``label``, ``predicted``, ``uncertain``, ``quality``, ``explanation``, ``probabilities``; a video face
        adds ``track``, ``detected``, ``smoothed_label`` and ``smoothed``."""
        out = {
            "box": [_r(v) for v in self.box],
            "score": _r(self.score, 6),
            "landmarks": None if self.landmarks is None else [[_r(x), _r(y)] for x, y in self.landmarks],
            "label": self.label,
            "predicted": self.predicted,
            "uncertain": self.uncertain,
            "quality": None if self.quality is None else self.quality.to_dict(),
            "explanation": self.explanation,
            "probabilities": {k: _r(v, 6) for k, v in self.probabilities.items()},
        }
        if self.track is not None:
            out.update(track=int(self.track), detected=bool(self.detected), smoothed_label=self.smoothed_label,
                       smoothed={k: _r(v, 6) for k, v in (self.smoothed or self.probabilities).items()})
        return out


@dataclass(frozen=True)
class ImageResult:
    """All faces of one image (or one video frame).

    Attributes:
        path: the file it came from, or ``None`` for an in-memory image.
        size: ``(width, height)`` after EXIF rotation.
        faces: detected faces, left to right (by box centre).
        frame: the frame index for a video frame, else ``None``.
        time_s: the frame's time in seconds for a video frame, else ``None``.
    """

    path: str | None
    size: tuple[int, int]
    faces: list[FaceResult]
    frame: int | None = None
    time_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``path``, ``size`` ([w, h]), ``frame``, ``time_s``, ``faces``."""
        return {
            "path": self.path,
            "size": [int(self.size[0]), int(self.size[1])],
            "frame": self.frame,
            "time_s": None if self.time_s is None else _r(self.time_s, 3),
            "faces": [f.to_dict() for f in self.faces],
        }
