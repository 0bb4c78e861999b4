"""Face detection with facenet-pytorch's MTCNN (weights ship inside the package: works offline)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

__all__ = ["Detections", "FaceDetector", "DETECT_MAX_SIDE", "DEFAULT_MIN_FACE"]

#: Photos are searched for faces at most this large (longest side); boxes are scaled back.
#: MTCNN's cost grows with the pixel count, and at 1600 px a face of 20 px is still ~12 px,
#: the smallest its first stage can see.
DETECT_MAX_SIDE = 1600
#: MTCNN's own default smallest face (px).
DEFAULT_MIN_FACE = 20


@dataclass(frozen=True)
class Detections:
    """Faces found in one image, in original-image pixels (boxes are not clipped)."""

    boxes: np.ndarray  # (N, 4) float64: x1, y1, x2, y2
    scores: np.ndarray  # (N,) float64
    landmarks: np.ndarray  # (N, 5, 2) float64

    def __len__(self) -> int:
        return len(self.scores)

    @staticmethod
    def empty() -> "Detections":
        return Detections(np.zeros((0, 4)), np.zeros((0,)), np.zeros((0, 5, 2)))


class FaceDetector:
    """Find all faces with their five landmarks.

    Args:
        device: where MTCNN runs.
        min_face: ignore faces whose box is smaller than this (longest side, original pixels).
        min_score: ignore detections with a lower face probability. MTCNN's last stage keeps
            candidates from 0.7 on, which lets through patterns of texture; 0.9 removes those.
        max_side: detect on a copy downscaled to this longest side.
    """

    def __init__(self, device: str | torch.device = "cpu", min_face: int = DEFAULT_MIN_FACE, min_score: float = 0.9,
                 max_side: int = DETECT_MAX_SIDE) -> None:
        from facenet_pytorch import MTCNN  # heavy-ish import; only when a detector is built

        self.device = torch.device(device)
        self.min_face = int(min_face)
        self.min_score = float(min_score)
        self.max_side = int(max_side)
        # keep_all: every face; select_largest=False: most confident first.
        self.mtcnn = MTCNN(keep_all=True, select_largest=False, post_process=False,
                           min_face_size=DEFAULT_MIN_FACE, device=self.device)

    def __call__(self, image: Image.Image) -> Detections:
        """Detect faces in an RGB image."""
        w, h = image.size
        scale = min(1.0, self.max_side / max(w, h))
        small = image
        if scale < 1.0:
            small = image.resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                 Image.Resampling.BILINEAR, reducing_gap=2.0)
        # MTCNN's pyramid starts at 12 / min_face_size (below 12 px it would upsample the photo).
        # Its detections shift a little with the pyramid, so a min_face above the default only
        # filters: raising it never changes or loses the larger faces found at the default.
        self.mtcnn.min_face_size = max(min(self.min_face, DEFAULT_MIN_FACE) * scale, 12.0)
        if min(small.size) < self.mtcnn.min_face_size:
            # No face fits, and MTCNN's pyramid would be empty: it fails on torch.cat([]).
            return Detections.empty()
        boxes, scores, points = self.mtcnn.detect(small, landmarks=True)
        if boxes is None:
            return Detections.empty()
        # detect() returns numpy object arrays; make them numeric, in original pixels.
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) / scale
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        points = np.asarray(points, dtype=np.float64).reshape(-1, 5, 2) / scale
        size = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        keep = (scores >= self.min_score) & (size >= self.min_face)
        return Detections(boxes[keep], scores[keep], points[keep])
