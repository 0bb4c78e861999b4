"""The single preprocessing path shared by training, evaluation and inference.

Two steps, each one function, so that training and prediction cannot drift apart:

* :func:`to_fer_face` turns any face image into what FER2013 stores: 48×48 grayscale uint8.
* :func:`to_model_input` turns such faces into the normalised float tensor a model eats.
"""

from __future__ import annotations

import struct

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

__all__ = ["FER_SIZE", "IMAGE_SUFFIXES", "MEAN", "STD", "MAX_SIDE", "DECODE_ERRORS", "HIGH_BIT_MODES", "scale_to_u8",
           "upright", "to_rgb", "to_fer_face", "to_model_input"]

FER_SIZE = 48
#: File suffixes read as images, by the dataset readers and by the predictor alike.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jfif", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp",
                            ".ppm", ".pgm", ".pbm"})
# Pixel statistics of the FER2013 Training split (scaled to [0, 1]).
MEAN = 0.5077
STD = 0.2550

#: Longest image side ever decoded, the most a JPEG or GIF can have. Checked from the header: PIL
#: keeps a pointer per row, so a tiny file claiming 1 × 100,000,000 px would cost gigabytes before
#: its first row is decoded.
MAX_SIDE = 65_535

#: What PIL raises on broken files. Its plugins are not consistent: fuzzing found TypeError from the
#: TIFF and IM readers and NotImplementedError from the DDS reader, besides the usual OSError.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError, TypeError,
                 ArithmeticError, NotImplementedError)


#: PIL modes with more than 8 bits per pixel (16-bit scans, 32-bit integers, floats).
HIGH_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def scale_to_u8(arr: np.ndarray) -> np.ndarray:
    """16-bit or float pixels → uint8: scaled by their maximum when it exceeds 255, so a 16-bit scan
    looks the same as its 8-bit export; clipped to [0, 255]."""
    arr = np.asarray(arr, dtype=np.float32)
    hi = float(arr.max()) if arr.size else 0.0
    if hi > 255:
        arr = arr * (255.0 / hi)
    return np.clip(arr, 0, 255).astype(np.uint8)


def upright(image: Image.Image) -> Image.Image:
    """``image`` turned as its EXIF orientation says (a loaded copy where there is none). Call it
    while the file is open: the EXIF block is read from it."""
    return ImageOps.exif_transpose(image) if image.getexif() else image.copy()


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode → 8-bit RGB; transparency is composited over white (how viewers show it)."""
    if image.mode == "RGB":
        return image
    if image.mode in HIGH_BIT_MODES:
        return Image.fromarray(scale_to_u8(np.asarray(image)), "L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode == "La":  # premultiplied: PIL converts it to LA only
        image = image.convert("LA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def to_fer_face(image: Image.Image | np.ndarray) -> np.ndarray:
    """Convert a face image (any mode, any size) to a 48×48 grayscale uint8 array; modes other
    than L and RGB go through :func:`to_rgb` (transparency over white).

    FER2013 faces are grayscale and 48×48, so this is also how detected faces are
    prepared for the classifier at inference time.
    """
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    if image.mode not in ("L", "RGB"):
        # The one normalisation of every other mode (alpha, palette, 16-bit, float, CMYK), shared
        # with the predictor's reader, so that a model is scored on the pixels it predicts on.
        image = to_rgb(image)
    gray = image.convert("L")
    if gray.size != (FER_SIZE, FER_SIZE):
        gray = gray.resize((FER_SIZE, FER_SIZE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(gray, dtype=np.uint8)


def to_model_input(faces: np.ndarray | torch.Tensor, size: int = FER_SIZE) -> torch.Tensor:
    """Normalise uint8 grayscale faces into a float tensor of shape (N, 1, size, size).

    Args:
        faces: uint8 array or tensor of shape (H, W) or (N, H, W).
        size: side length the model expects; faces are resized bilinearly if it differs.
    """
    if isinstance(faces, np.ndarray) and not faces.flags.writeable:
        faces = faces.copy()  # a view of a PIL image is read-only, and torch warns about those
    x = torch.as_tensor(faces)
    if x.ndim == 2:
        x = x.unsqueeze(0)
    x = x.unsqueeze(1).float().div_(255.0)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.sub_(MEAN).div_(STD)
