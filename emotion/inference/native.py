"""Native-level help: torchvision's compiled kernels (NMS, JPEG decoding), loaded without its Python package,
and the C allocator told to keep freed memory (:func:`keep_freed_memory`).

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

__all__ = ["torchvision_nms", "torchvision_decode_jpeg", "keep_freed_memory", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

#: glibc serves blocks from this size on with a fresh ``mmap`` (faulted in page by page, zeroed by the kernel)
#: and unmaps them on free; its own default starts at 128 KB and adapts up to 32 MB. Detection's
#: temporaries (a 960-px frame's summed-area table: 6 MB; P-Net's first activations on the finest
#: level: 7.5 MB at 960 px, 19 MB at 1600) and each decoded 1080p frame (6 MB) are all below 64 MB.
MMAP_THRESHOLD = 64 << 20
#: Freed memory at the top of the heap is handed back to the kernel only beyond this (glibc: twice the
#: mmap threshold), so the next photo's temporaries reuse pages already faulted in.
TRIM_THRESHOLD = 256 << 20


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


@lru_cache(maxsize=None)
def keep_freed_memory() -> bool:
    """Have glibc's allocator keep freed blocks for reuse (:data:`MMAP_THRESHOLD`, :data:`TRIM_THRESHOLD`)
    rather than return them to the kernel and fault them in again for the next image: MTCNN's and the
    classifier's temporaries are megabytes each, allocated and freed on every photo and frame.

    Measured together with MTCNN's one-axis pyramid resampling (AMD EPYC, 2 cores;
    ``experiments/results/bench_serve_reruns/README.md``): the service's photo throughput 1.13× at one
    client and 1.14-1.19× at 4 and 16, against the code before both. The process then holds on to up to
    :data:`TRIM_THRESHOLD` of freed memory.

    Called once by :class:`~emotion.inference.detection.FaceDetector`; ``EMOTION_KEEP_FREED_MEMORY=0``
    leaves the allocator as it is. Returns whether the settings were applied (glibc only: elsewhere,
    and on musl, nothing is changed).
    """
    if os.environ.get("EMOTION_KEEP_FREED_MEMORY", "1") == "0":
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    return bool(mallopt(m_mmap_threshold, MMAP_THRESHOLD)) and bool(mallopt(m_trim_threshold, TRIM_THRESHOLD))
