"""emotion: facial-expression recognition on FER2013.

Notebook use::

    from emotion import EmotionClassifier, load_model
    model = EmotionClassifier.load_from_checkpoint("outputs/train/runs/…/checkpoints/last.ckpt")
    model = load_model("…/last.ckpt")  # eval mode, best device, weights only
"""

from emotion.checkpoint import load_model
from emotion.data.classes import CLASS_NAMES
from emotion.errors import EmotionError

__all__ = ["CLASS_NAMES", "EmotionClassifier", "EmotionError", "FaceEmotionPredictor", "load_model"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # Lightning is heavy to import; load the LightningModule only when asked for.
    if name == "EmotionClassifier":
        from emotion.training.module import EmotionClassifier
        return EmotionClassifier
    if name == "FaceEmotionPredictor":
        from emotion.inference import FaceEmotionPredictor
        return FaceEmotionPredictor
    raise AttributeError(name)
