"""Whether to trust a face's label: its quality and the model's confidence (``quality``), and what the
model looked at (``explain``)."""

from emotion.inference.trust.quality import (
                                             ABSTAIN,
                                             MIN_QUALITY,
                                             UNCERTAIN,
                                             FaceQuality,
                                             decide,
                                             face_quality,
                                             head_pose,
                                             sharpness,
)

__all__ = ["FaceQuality", "face_quality", "sharpness", "head_pose", "decide", "MIN_QUALITY", "ABSTAIN", "UNCERTAIN"]
