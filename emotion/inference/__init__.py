"""Multi-face inference: MTCNN finds the faces, a FER2013 classifier names their expressions.

::

    from emotion.inference import FaceEmotionPredictor
    p = FaceEmotionPredictor.from_checkpoint()  # bundled model; or a .ckpt / exported folder
    result = p("photo.jpg")                     # ImageResult: path, size, faces
    p.annotate("photo.jpg", result).save("photo_annotated.png")
    video = p.video("clip.mp4")                 # VideoResult: face tracks, smoothed emotions
    video.to_pandas(), video.tracks_pandas()    # a row per face per frame; a row per track
"""

from emotion.inference.detection.crop import DEFAULT_MARGIN, crop_face, eye_angle
from emotion.inference.detection.detector import MTCNN_MIN_FACE, Detections, FaceDetector
from emotion.inference.drivers.formats import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from emotion.inference.images import MAX_PIXELS, load_image
from emotion.inference.predictor import FaceEmotionPredictor
from emotion.inference.results import SCHEMA_VERSION, FaceResult, ImageResult
from emotion.inference.runtime import RUNTIMES, OnnxClassifier, load_classifier

__all__ = ["FaceEmotionPredictor", "FaceResult", "ImageResult", "FaceDetector", "Detections",
           "crop_face", "eye_angle", "load_image", "DEFAULT_MARGIN", "MTCNN_MIN_FACE", "MAX_PIXELS",
           "SCHEMA_VERSION", "IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "RUNTIMES", "OnnxClassifier", "load_classifier"]
