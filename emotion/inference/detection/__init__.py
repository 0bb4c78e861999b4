"""Finding faces: the one :class:`Detections` type every detector returns and every consumer reads, the
detector (MTCNN, with facenet-pytorch's nets and weights shipped in the package), and the crop that turns a
detected face into the classifier's 48×48 input."""

from emotion.inference.detection.crop import DEFAULT_MARGIN, crop_face, eye_angle
from emotion.inference.detection.detections import Detections
from emotion.inference.detection.detector import (
           AUTO,
           DETECT_MAX_SIDE,
           MAX_MIN_FACE,
           MTCNN_MIN_FACE,
           FaceDetector,
           MinFace,
)

__all__ = ["Detections", "FaceDetector", "MinFace", "AUTO", "DETECT_MAX_SIDE", "MTCNN_MIN_FACE", "MAX_MIN_FACE",
           "crop_face", "eye_angle", "DEFAULT_MARGIN"]
