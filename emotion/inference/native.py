"""torchvision's compiled kernels (NMS, JPEG decoding), loaded without its Python package.

Importing ``torchvision`` costs ~1.1 s of a photo run's start-up here (its ``ops`` import ``torch._dynamo``;
``python -X importtime``), while its two shared libraries load in ~2 ms each and register their ops with torch.
Each getter returns the op, or ``None`` where torchvision or that op is absent (another build, another
version): the callers then use their own code, which gives the same answers (tests/test_mtcnn.py and
tests/test_inference.py check both paths against torchvision's public functions).
"""

from __future__ import annotations

import glob
import importlib.util
import os
from functools import lru_cache
from typing import Callable

import torch

__all__ = ["torchvision_nms", "torchvision_decode_jpeg"]


@lru_cache(maxsize=None)
def _load(library: str) -> bool:
    """Load ``torchvision/<library>*.so`` into torch's op registry; whether it loaded."""
    try:
        spec = importlib.util.find_spec("torchvision")  # finds the package without running it
        folders = list(spec.submodule_search_locations or []) if spec else []
        paths = [p for d in folders for p in glob.glob(os.path.join(d, f"{library}*.so"))]
        if not paths:
            return False
        torch.ops.load_library(paths[0])
        return True
    except (OSError, RuntimeError, ImportError, ValueError):
        return False


def _op(library: str, namespace: str, name: str) -> Callable | None:
    """``torch.ops.<namespace>.<name>`` once ``torchvision/<library>*.so`` is loaded, or ``None``."""
    if not _load(library):
        return None
    try:
        return getattr(getattr(torch.ops, namespace), name)
    except (AttributeError, RuntimeError):
        return None


@lru_cache(maxsize=None)
def torchvision_nms() -> Callable | None:
    """``torch.ops.torchvision.nms(boxes, scores, iou_threshold)``, or ``None``."""
    return _op("_C", "torchvision", "nms")


@lru_cache(maxsize=None)
def torchvision_decode_jpeg() -> Callable | None:
    """``data (uint8 tensor) → (3, H, W) RGB uint8`` by torchvision's libjpeg-turbo, or ``None``."""
    op = _op("image", "image", "decode_jpeg")
    # ImageReadMode.RGB; no EXIF turn (the caller checks the photo is upright)
    return None if op is None else (lambda data: op(data, 3, False))
