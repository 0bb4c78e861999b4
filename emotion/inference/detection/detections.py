"""The one type every detector returns and every consumer reads: faces found in one image. It imports
nothing of the package, so that the detectors and their consumers all depend on it, not on each other."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Detections"]


@dataclass(frozen=True)
class Detections:
    """Faces found in one image, in its pixels (boxes are not clipped), most confident first from
    :class:`~emotion.inference.detection.mtcnn.MTCNN`; float32 there, float64 from :class:`FaceDetector`."""

    boxes: np.ndarray  # (N, 4): x1, y1, x2, y2
    scores: np.ndarray  # (N,)
    landmarks: np.ndarray | None  # (N, 5, 2); None for faces given as crops (no detector ran)

    def __len__(self) -> int:
        return len(self.scores)

    def take(self, index: np.ndarray) -> "Detections":
        """The faces at ``index`` (an integer array), in its order."""
        return Detections(self.boxes[index], self.scores[index],
                          None if self.landmarks is None else self.landmarks[index])

    @staticmethod
    def empty() -> "Detections":
        return Detections(np.zeros((0, 4)), np.zeros((0,)), np.zeros((0, 5, 2)))
