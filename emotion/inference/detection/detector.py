"""Face detection: MTCNN with facenet-pytorch's nets and weights (shipped in this package: works offline)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from emotion.inference.detection.detections import Detections

__all__ = ["Detections", "FaceDetector", "MinFace", "AUTO", "DETECT_MAX_SIDE", "MTCNN_MIN_FACE", "MAX_MIN_FACE",
           "AUTO_MIN_FACE_FRACTION", "AUTO_MIN_FACE_RANGE"]

#: Photos are searched for faces at most this large (longest side); boxes are scaled back.
#: MTCNN's cost grows with the pixel count, and at 1600 px a face of 20 px is still ~12 px,
#: the smallest its first stage can see.
DETECT_MAX_SIDE = 1600
#: MTCNN's own default smallest face (px).
MTCNN_MIN_FACE = 20
#: ``min_face=None``: search faces from 1/12 of the photo's shorter side, kept within these px and
#: rounded to the nearest step of MTCNN's pyramid (20, 28, 40, 56 px): 56 px on photos of 576 px
#: and more, less on smaller ones, never below MTCNN's 20. Skipping the finest levels is what makes
#: the default fast; ``min_face=20`` searches all (experiments/results/detection_check.md).
AUTO_MIN_FACE_FRACTION = 1 / 12
AUTO_MIN_FACE_RANGE = (MTCNN_MIN_FACE, 48)
#: The largest ``min_face`` anyone may ask for (px): beyond, no photo we accept has such a face to find.
MAX_MIN_FACE = 4096


@dataclass(frozen=True)
class MinFace:
    """The smallest face searched for: ``px`` (box's longer side, original pixels; smaller boxes are dropped
    too), or automatic (``px=None``: from :meth:`FaceDetector.min_face_for` each image, nothing dropped).
    One type and one rule (:meth:`parse`) for the CLI, the service and the API."""

    px: float | None = None

    @classmethod
    def parse(cls, raw: str | int | float | None) -> "MinFace":
        """``"auto"`` (or ``None``) or an integer from MTCNN's 20 to 4096 px.

        Raises:
            ValueError: anything else, with a message that says what to give.
        """
        if raw is None or str(raw).strip().lower() == "auto":
            return cls(None)
        try:
            px = int(str(raw).strip())
        except ValueError:
            raise ValueError(f"{str(raw)[:40]!r} is not an integer; give px or 'auto'") from None
        if not MTCNN_MIN_FACE <= px <= MAX_MIN_FACE:
            raise ValueError(f"must be between {MTCNN_MIN_FACE} and {MAX_MIN_FACE} px, or 'auto'; got {px}")
        return cls(float(px))

    def __str__(self) -> str:
        return "auto" if self.px is None else f"{self.px:g}"


AUTO = MinFace(None)


class FaceDetector:
    """Find all faces with their five landmarks.

    Args:
        device: where MTCNN runs.
        min_face: the detector's own smallest face (:class:`MinFace`; a number is px, ``None`` is auto):
            what it searches for whenever a call does not say otherwise.
        min_score: ignore detections with a lower face probability. MTCNN's last stage keeps
            candidates from 0.7 on, which lets through patterns of texture; 0.9 removes those.
        max_side: detect on a copy downscaled to this longest side.
    """

    def __init__(self, device: str | torch.device = "cpu", min_face: MinFace | float | None = None,
                 min_score: float = 0.9, max_side: int = DETECT_MAX_SIDE) -> None:
        # Imported here, not at the top, so that importing emotion.inference does not import torchvision
        # (MTCNN's NMS) for code that never detects; there is no import cycle (Detections has its own module).
        from emotion.inference.detection.mtcnn import MTCNN
        from emotion.inference.native import keep_freed_memory

        self.device = torch.device(device)
        self.min_face = min_face if isinstance(min_face, MinFace) else MinFace(None if min_face is None
                                                                               else float(min_face))
        self.min_score = float(min_score)
        self.max_side = int(max_side)
        self.mtcnn = MTCNN(self.device)
        keep_freed_memory()  # every image's megabytes of temporaries reuse pages already faulted in

    def min_face_for(self, size: tuple[int, int], min_face: MinFace | None = None) -> float:
        """The smallest face (px) searched for in an image of ``size`` (w, h), by ``min_face``
        (``None``: the detector's own)."""
        min_face = min_face or self.min_face
        if min_face.px is not None:
            return min_face.px
        lo, hi = AUTO_MIN_FACE_RANGE
        want = min(max(min(size) * AUTO_MIN_FACE_FRACTION, lo), hi)
        steps = round(math.log(want / MTCNN_MIN_FACE) / -math.log(self.mtcnn.factor))
        return MTCNN_MIN_FACE * self.mtcnn.factor ** -steps

    def __call__(self, image: Image.Image, min_face: MinFace | None = None) -> Detections:
        """Detect faces in an RGB image, by ``min_face`` (``None``: the detector's own)."""
        w, h = image.size
        scale = min(1.0, self.max_side / max(w, h))
        small = image
        if scale < 1.0:
            small = image.resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                 Image.Resampling.BILINEAR, reducing_gap=2.0)
        return self.detect_scaled(small, scale, (w, h), min_face)

    def detect_scaled(self, small: Image.Image, scale: float, size: tuple[int, int],
                      min_face: MinFace | None = None) -> Detections:
        """Detect on ``small``, a copy of an image of ``size`` (w, h) already downscaled by ``scale``
        (a video reader resizes frames its own faster way); boxes come back in the image's pixels."""
        asked = (min_face or self.min_face).px
        min_face = self.min_face_for(size, min_face)
        # The pyramid is laid out as for MTCNN's 20-px default (below 12 px on the copy it would
        # upsample the photo) and starts at its level nearest to min_face: a larger min_face skips
        # the finest, costliest levels and keeps the others, which find the larger faces as before.
        anchor = max(min(min_face, MTCNN_MIN_FACE) * scale, 12.0)
        found = self.mtcnn.detect(np.asarray(small), min_face=max(min_face * scale, anchor), anchor=anchor)
        boxes = found.boxes.astype(np.float64) / scale
        scores = found.scores.astype(np.float64)
        points = found.landmarks.astype(np.float64) / scale
        keep = scores >= self.min_score
        if asked is not None:  # asked for: drop smaller boxes (auto only says where to start)
            keep &= np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) >= float(asked)
        return Detections(boxes[keep], scores[keep], points[keep])

    def refine(self, rgb: np.ndarray, boxes: np.ndarray) -> Detections:
        """:meth:`MTCNN.refine`: each of ``boxes`` (a track's expected face, in ``rgb``'s pixels) found again
        nearby, or score 0 where O-Net's score is under ``min_score``. ``rgb`` may be a view (a BGR frame's
        ``[..., ::-1]``): only each box's neighbourhood is read."""
        found = self.mtcnn.refine(rgb, np.asarray(boxes, np.float64))
        scores = found.scores.astype(np.float64)
        scores[scores < self.min_score] = 0.0
        return Detections(found.boxes.astype(np.float64), scores, found.landmarks.astype(np.float64))
