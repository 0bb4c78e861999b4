"""Turn whatever the user passes (a path, a PIL image, a numpy array) into one upright 8-bit RGB image.

Every failure a user can cause (missing file, not an image, truncated file, absurd dimensions)
becomes an :class:`~emotion.errors.EmotionError` that names the file.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from emotion.data.preprocess import DECODE_ERRORS, MAX_SIDE, scale_to_u8, to_rgb, upright
from emotion.errors import EmotionError, TooLarge, first_line

__all__ = ["MAX_PIXELS", "MAX_SIDE", "ImageSource", "load_image"]

#: Largest image we decode (width × height). 120 MP admits every camera photo (a 102 MP
#: medium-format frame included) while keeping the decoded RGB under ~360 MB. Checked from the
#: header, before decoding, so a "decompression bomb" (tiny file, huge dimensions) costs nothing.
#: PIL's own ``Image.MAX_IMAGE_PIXELS`` guard (an error above 2 × 89.5 MP) is left in place and
#: its error is reported the same way; we do not change that global.
MAX_PIXELS = 120_000_000

ImageSource = str | os.PathLike | bytes | Image.Image | np.ndarray
ORIENTATION_TAG = 0x0112  # EXIF


def _check_pixels(size: tuple[int, int], max_pixels: int | None, name: str) -> None:
    w, h = size
    if w < 1 or h < 1:  # nothing to detect in, and 0 × 0 would divide by zero downstream
        raise EmotionError(f"'{name}' is {w}×{h}: an image without pixels.")
    if max_pixels is not None and w * h > max_pixels:
        raise TooLarge(f"'{name}' is {w}×{h} = {w * h / 1e6:.0f} MP, above the {max_pixels / 1e6:.0f} MP "
                           "limit (refused as a possible decompression bomb); downscale it first.")
    if max_pixels is not None and max(w, h) > MAX_SIDE:
        raise TooLarge(f"'{name}' is {w}×{h}, a side above the {MAX_SIDE} px limit (refused as a possible "
                           "decompression bomb); downscale it first.")


def _from_array(arr: np.ndarray) -> Image.Image:
    """An (H, W), (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA array as a PIL image."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)) or 0 in arr.shape:
        raise EmotionError(f"an image array must be (H, W), (H, W, 3) RGB or (H, W, 4) RGBA, got shape {arr.shape}.")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    elif np.issubdtype(arr.dtype, np.floating) and arr.size and float(np.nanmax(arr)) <= 1.0:
        arr = np.nan_to_num(arr) * 255.0  # floats in [0, 1], as from skimage / torchvision
    if arr.dtype != np.uint8:
        if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
            raise EmotionError(f"an image array must hold numbers, got dtype {arr.dtype}.")
        arr = scale_to_u8(np.nan_to_num(arr))
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[arr.shape[2] if arr.ndim == 3 else 2]
    return Image.fromarray(np.ascontiguousarray(arr), mode)


def _open(path: Path, max_pixels: int | None) -> Image.Image:
    if not path.exists():
        raise EmotionError(f"'{path}' not found.")
    if path.is_dir():
        raise EmotionError(f"'{path}' is a folder, not an image.")
    return _decode(path, str(path), max_pixels, lambda: _read_file(path))


def _decode(fp, name: str, max_pixels: int | None, raw) -> Image.Image:
    """Decode the image file ``fp`` (a path or a binary file object), named ``name`` in messages.
    Its type comes from its bytes, never from a name. ``raw()`` gives its bytes as a uint8 tensor,
    for the fast JPEG path."""
    try:
        with warnings.catch_warnings():
            # Our own limit decides; PIL's warning between 89 and 179 MP would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(fp) as im:
                _check_pixels(im.size, max_pixels, name)  # header only: nothing decoded yet
                fast = _decode_plain_jpeg(im, raw)
                if fast is not None:
                    return fast
                im.load()
                return upright(im)
    except Image.DecompressionBombError as e:
        raise TooLarge(f"'{name}' refused as a possible decompression bomb ({e}).") from None
    except UnidentifiedImageError:
        raise EmotionError(f"'{name}' is not an image (unrecognised format).") from None
    except PermissionError:
        raise EmotionError(f"'{name}' cannot be read (permission denied).") from None
    except DECODE_ERRORS as e:
        raise EmotionError(f"'{name}' cannot be decoded (truncated or corrupt: {first_line(e)}).") from None


def _read_file(path: Path):
    import torch

    return torch.from_numpy(np.fromfile(path, dtype=np.uint8))  # one read, no copy


def _decode_plain_jpeg(im: Image.Image, raw) -> Image.Image | None:
    """An upright RGB JPEG decoded by torchvision's libjpeg-turbo (its compiled op, without importing
    torchvision: :mod:`emotion.inference.native`): the same pixels as PIL's, about a third faster here (a
    1200×630 progressive photo: 11 ms against 15). ``None`` for anything else (other formats and modes, a
    rotated EXIF orientation, a decoding error, no torchvision), which PIL then reads."""
    if im.format != "JPEG" or im.mode != "RGB" or im.getexif().get(ORIENTATION_TAG, 1) != 1:
        return None
    from emotion.inference.native import torchvision_decode_jpeg

    decode = torchvision_decode_jpeg()
    if decode is None:
        return None
    try:
        return Image.fromarray(decode(raw()).permute(1, 2, 0).numpy())
    except RuntimeError:  # libjpeg's own complaint: let PIL decode it, or name what is wrong
        return None


def load_image(source: ImageSource, max_pixels: int | None = MAX_PIXELS) -> tuple[Image.Image, str | None]:
    """Load an image as upright 8-bit RGB.

    Args:
        source: a file path, the bytes of an image file (an upload), a PIL image or a numpy array
            (RGB channel order; convert OpenCV's BGR first).
        max_pixels: refuse images with more pixels than this, or a side over :data:`MAX_SIDE`
            (``None``: no limit).

    Returns:
        The RGB image (EXIF orientation applied) and the path as a string, or ``None``.

    Raises:
        EmotionError: the file is missing, not an image, truncated, or too large.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        return to_rgb(_open(path, max_pixels)), str(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise EmotionError("the upload is empty: send the bytes of an image file.")
        import torch

        def raw():
            return torch.frombuffer(bytearray(data), dtype=torch.uint8)

        return to_rgb(_decode(io.BytesIO(data), "upload", max_pixels, raw)), None
    if isinstance(source, Image.Image):
        name = getattr(source, "filename", None) or None
        _check_pixels(source.size, max_pixels, name or "image")
        try:
            source.load()  # a lazily opened image is decoded only now
            return to_rgb(upright(source)), name
        except DECODE_ERRORS as e:
            raise EmotionError(f"'{name or 'image'}' cannot be decoded ({first_line(e)}).") from None
    if isinstance(source, np.ndarray):
        return to_rgb(_from_array(source)), None
    raise EmotionError(f"cannot read an image from a {type(source).__name__}; pass a path, a PIL image "
                       "or a numpy array.")
