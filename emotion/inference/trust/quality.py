"""Per-face quality, and when a face gets no label.

Each face gets a :class:`FaceQuality`: its size, the sharpness of the 48×48 face the classifier saw, the
head pose from the detector's five landmarks, the detector's score, and one ``overall`` score in [0, 1].
Each part maps to the accuracy the model keeps at that value, relative to clean faces, by a table
measured on FER2013 PublicTest and degraded copies of it (``experiments/measure_quality.py`` →
``experiments/results/quality.json``); ``overall`` is the lowest of them, the part that limits the face.

:func:`decide` turns a face into ``"uncertain"`` when ``overall`` is below ``min_quality`` or the calibrated
top probability is below ``abstain``; the probabilities are kept either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

__all__ = ["FaceQuality", "face_quality", "sharpness", "head_pose", "decide", "MIN_QUALITY", "ABSTAIN",
           "UNCERTAIN", "SHARPNESS_REF"]

#: The label of a face the predictor will not name.
UNCERTAIN = "uncertain"

#: Median of ``var(Laplacian) / var(pixels)`` over the 28,709 FER2013 Training faces (AMD EPYC, numpy;
#: ``experiments/results/quality.json``, ``sharpness_ref``): a face's ``sharpness`` is its own ratio over
#: this, so 1.0 is a typical training face.
SHARPNESS_REF = 0.8847

#: Nose-tip depth in front of the eyes over the eye distance (about 33 mm over 63 mm in adult faces), for
#: the yaw of :func:`head_pose`: with eyes at ±e and the nose tip at depth n, a yaw θ moves the nose by
#: n·sin θ while the eyes close to 2e·cos θ, so θ = atan(offset / (0.52 · eye distance)).
NOSE_DEPTH = 0.52

# Relative accuracy (accuracy on the faces at that value over accuracy on clean faces, PublicTest, the
# default model, crowd labels) at each measured value; between values it is interpolated, beyond them held.
# Filled from experiments/results/quality.json by experiments/measure_quality.py --write-constants;
# tests/test_quality.py checks they match that file.
#: face size (box's longer side, px of the photo) → relative accuracy.
SIZE_TABLE: tuple[tuple[float, float], ...] = (
    (9.412, 0.452), (14.118, 0.56), (18.824, 0.756), (23.529, 0.865), (28.235, 0.941), (37.647, 0.986),
    (47.059, 0.986), (56.471, 1.0),
)
#: sharpness (1 = a typical FER2013 face) → relative accuracy.
SHARPNESS_TABLE: tuple[tuple[float, float], ...] = (
    (0.003, 0.403), (0.005, 0.456), (0.008, 0.553), (0.013, 0.588), (0.019, 0.685), (0.029, 0.743),
    (0.057, 0.899), (0.096, 0.952), (0.233, 0.981), (0.397, 0.998), (0.766, 0.998), (1.35, 0.998),
)
#: |yaw| in degrees → relative accuracy.
YAW_TABLE: tuple[tuple[float, float], ...] = (
    (3.82, 1.0), (14.303, 1.0), (24.179, 1.0), (34.32, 1.0), (49.228, 0.966),
)
#: |roll| in degrees, for faces not rotated upright (``align=False``) → relative accuracy.
ROLL_TABLE: tuple[tuple[float, float], ...] = (
    (0.0, 1.0), (10.0, 0.982), (20.0, 0.951), (30.0, 0.879), (45.0, 0.729),
)

#: Default ``min_quality``: see experiments/results/quality.md.
MIN_QUALITY = 0.75
#: Default ``abstain``: see experiments/results/quality.md.
ABSTAIN = 0.45


def _table(table: Sequence[tuple[float, float]], value: float) -> float:
    xs, ys = zip(*table)
    return float(np.clip(np.interp(value, xs, ys), 0.0, 1.0))


@dataclass(frozen=True)
class FaceQuality:
    """How usable one face is, before the model's answer.

    Attributes:
        size_px: the detector box's longer side, in pixels of the photo.
        sharpness: ``var(Laplacian) / var(pixels)`` of the 48×48 face, over FER2013's median (1 = typical).
        yaw, roll: head pose in degrees from the five landmarks (``None`` without landmarks): yaw > 0
            turns the nose towards the image's right; roll is the eye line's angle (y down).
        score: the detector's face probability (1 for a face given as a crop).
        overall: the lowest of the parts' relative accuracies, in [0, 1] (1: as good as a clean face).
    """

    size_px: float
    sharpness: float
    yaw: float | None
    roll: float | None
    score: float
    overall: float

    def to_dict(self) -> dict[str, Any]:
        r = lambda v, nd=3: None if v is None else round(float(v), nd)  # noqa: E731
        return {"overall": r(self.overall), "size_px": r(self.size_px, 1), "sharpness": r(self.sharpness),
                "yaw": r(self.yaw, 1), "roll": r(self.roll, 1), "score": r(self.score, 6)}


def sharpness(faces: np.ndarray) -> np.ndarray:
    """``var(Laplacian) / var(pixels)`` of each uint8 face (N, H, W) over :data:`SHARPNESS_REF`: blur lowers
    it, contrast and brightness do not change it. A flat face (no variance) scores 0."""
    x = np.asarray(faces, np.float32)
    if x.ndim == 2:
        x = x[None]
    lap = x[:, 1:-1, :-2] + x[:, 1:-1, 2:] + x[:, :-2, 1:-1] + x[:, 2:, 1:-1] - 4 * x[:, 1:-1, 1:-1]
    var = x.var(axis=(1, 2))
    ratio = np.where(var > 1e-6, lap.var(axis=(1, 2)) / np.maximum(var, 1e-6), 0.0)
    return ratio / SHARPNESS_REF


def head_pose(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Yaw and roll in degrees of each face from its five points (N, 5, 2): left eye, right eye, nose,
    mouth left, mouth right, as the image shows them. Roll is the eye line's angle; yaw comes from the
    nose's offset from the eyes' midpoint along the eye line (:data:`NOSE_DEPTH`). An estimate, for
    ranking faces: MTCNN's points on a near-profile face are themselves rough."""
    pts = np.asarray(landmarks, np.float64).reshape(-1, 5, 2)
    left, right, nose = pts[:, 0], pts[:, 1], pts[:, 2]
    eye = right - left
    dist = np.maximum(np.hypot(eye[:, 0], eye[:, 1]), 1e-6)
    roll = np.degrees(np.arctan2(eye[:, 1], eye[:, 0]))
    along = ((nose - (left + right) / 2) * eye).sum(axis=1) / dist  # the offset along the eye line
    yaw = np.degrees(np.arctan(along / (NOSE_DEPTH * dist)))
    return yaw, roll


def face_quality(boxes: np.ndarray, scores: np.ndarray, landmarks: np.ndarray | None, faces: np.ndarray,
                 aligned: bool = True) -> list[FaceQuality]:
    """The :class:`FaceQuality` of each face: detector ``boxes`` (N, 4), ``scores`` (N,), ``landmarks``
    (N, 5, 2) or ``None``, and the 48×48 uint8 ``faces`` (N, 48, 48) the classifier saw. With
    ``aligned`` the faces were rotated upright, so roll costs nothing."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    sharp = sharpness(faces) if len(boxes) else np.zeros(0)
    yaw = roll = None
    if landmarks is not None and len(boxes):
        yaw, roll = head_pose(landmarks)
    out = []
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        size = max(x2 - x1, y2 - y1)
        parts = [_table(SIZE_TABLE, size), _table(SHARPNESS_TABLE, sharp[i])]
        if yaw is not None:
            parts.append(_table(YAW_TABLE, abs(yaw[i])))
            if not aligned:
                parts.append(_table(ROLL_TABLE, abs(roll[i])))
        out.append(FaceQuality(size_px=float(size), sharpness=float(sharp[i]),
                               yaw=None if yaw is None else float(yaw[i]),
                               roll=None if roll is None else float(roll[i]),
                               score=float(scores[i]), overall=min(parts)))
    return out


def decide(top_probability: float, quality: FaceQuality | None, min_quality: float = MIN_QUALITY,
           abstain: float = ABSTAIN) -> str | None:
    """Why a face gets no label: ``"quality"`` (``overall`` below ``min_quality``), ``"confidence"`` (its
    calibrated top probability below ``abstain``), or ``None``: it gets its label."""
    if quality is not None and quality.overall < min_quality:
        return "quality"
    if top_probability < abstain:
        return "confidence"
    return None


def check_threshold(name: str, value: Any) -> float:
    """``value`` as a threshold in [0, 1], or an ``EmotionError`` naming ``name``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not 0.0 <= v <= 1.0:
        from emotion.errors import EmotionError

        raise EmotionError(f"{name} must be a number between 0 and 1, got {value!r}.")
    return v
