"""The prediction service: a FastAPI app over :class:`~emotion.inference.FaceEmotionPredictor`
(``python -m emotion.serve``). The faces of concurrent requests are classified in one batch
(:class:`FaceBatcher`); uploads are bounded in size, pixels, queue and time (:class:`Limits`)."""

from emotion.service.app import Limits, create_app
from emotion.service.batcher import FaceBatcher

__all__ = ["Limits", "create_app", "FaceBatcher"]
