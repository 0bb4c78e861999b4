"""Plain-torch classifiers for 48×48 faces, behind a timm-style registry."""

from emotion.models import mini_xception as _mini_xception  # noqa: F401  (registers models)
from emotion.models import resnet as _resnet  # noqa: F401
from emotion.models import vgg as _vgg  # noqa: F401
from emotion.models.ensemble import Ensemble
from emotion.models.registry import create_model, list_models, register_model
from emotion.models.tta import TTA_MODES, check_tta, predict_proba

__all__ = ["Ensemble", "create_model", "list_models", "register_model", "predict_proba", "check_tta", "TTA_MODES"]
