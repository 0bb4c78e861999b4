"""Cut a detected face out of a photo framed the way FER2013 frames its faces.

The crop is a square centred on the detector's box, ``max(box w, h) * (1 + 2 * margin)`` on a
side, optionally rotated so that the eyes are level. Parts outside the photo repeat its edge
pixels (FER2013 has no black borders, so black would be out of distribution).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from PIL import Image

from emotion.data.preprocess import FER_SIZE

__all__ = ["DEFAULT_MARGIN", "CROP_SIZE", "eye_angle", "crop_face"]

#: Margin added on each side of the MTCNN box, as a fraction of the box's longer side.
#: Measured, not guessed (experiments/measure_margin.py → experiments/results/margin.json): on
#: 1000 FER2013 PublicTest faces re-detected by MTCNN and classified by the bundled model,
#: accuracy peaks on a plateau from -0.10 to 0.00 and falls steadily beyond (about -2 points per
#: +0.05); the neighbour-smoothed best (``select_margin``) is -0.075. Negative because FER2013
#: frames faces tighter than MTCNN boxes them: the box's height is ~1.04 frames.
DEFAULT_MARGIN = -0.075

#: Side of the RGB crop handed to ``to_fer_face`` (which reduces it to 48 with antialiasing).
CROP_SIZE = 4 * FER_SIZE


def eye_angle(landmarks: Sequence[Sequence[float]] | np.ndarray) -> float:
    """Angle in degrees of the line from the image-left eye to the image-right eye (y down)."""
    (lx, ly), (rx, ry) = landmarks[0][:2], landmarks[1][:2]
    return math.degrees(math.atan2(ry - ly, rx - lx))


def crop_face(image: Image.Image, box: Sequence[float], landmarks: Sequence[Sequence[float]] | None = None,
              margin: float = DEFAULT_MARGIN, align: bool = True, size: int = CROP_SIZE) -> Image.Image:
    """A ``size``×``size`` crop of the face in ``box`` of ``image``.

    Args:
        image: the photo (any PIL mode; RGB in practice).
        box: ``(x1, y1, x2, y2)`` from the detector, in ``image`` pixels (may leave the image).
        landmarks: the detector's five points; used only when ``align``.
        margin: extra context on each side, as a fraction of the box's longer side (negative:
            cut into the box; floored at -0.4).
        align: rotate about the box centre so the eye line is horizontal.
        size: output side in pixels.

    Memory stays bounded for any photo size: only the face's region is resampled, straight to
    the output scale (``resize`` with a source box), before padding and rotation.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = max(x2 - x1, y2 - y1, 1.0) * (1 + 2 * max(margin, -0.4))  # < 0: inside the box
    angle = eye_angle(landmarks) if align and landmarks is not None else 0.0
    rad = math.radians(angle)
    # Half-extent of the axis-aligned square that holds the rotated crop.
    half = side / 2 * (abs(math.cos(rad)) + abs(math.sin(rad)))
    left, top, right, bottom = cx - half, cy - half, cx + half, cy + half
    scale = size / side  # output pixels per source pixel
    extent = max(1, math.ceil(2 * half * scale))

    w, h = image.size
    il, it, ir, ib = max(left, 0.0), max(top, 0.0), min(right, float(w)), min(bottom, float(h))
    if ir - il < 1 or ib - it < 1:  # the box does not touch the image: nothing to show
        region = np.full((extent, extent, len(image.getbands())), 128, np.uint8)
    else:
        rw, rh = max(1, round((ir - il) * scale)), max(1, round((ib - it) * scale))
        inner = np.asarray(image.resize((rw, rh), Image.Resampling.BICUBIC, box=(il, it, ir, ib),
                                        reducing_gap=2.0))
        if inner.ndim == 2:
            inner = inner[..., None]
        pl, pt = round((il - left) * scale), round((it - top) * scale)
        pr, pb = max(0, extent - pl - rw), max(0, extent - pt - rh)
        region = np.pad(inner, ((pt, pb), (pl, pr), (0, 0)), mode="edge")
    # Two more edge pixels all round: rounding above must never let the fill colour show.
    region = np.pad(region, ((2, 2), (2, 2), (0, 0)), mode="edge")
    pil = Image.fromarray(region[..., 0] if region.shape[2] == 1 else region)
    # Inverse map, output → region: centre to centre, rotated by the eye angle (PIL works in
    # pixel-centre coordinates, hence the continuous centres).
    c, s = math.cos(rad), math.sin(rad)
    sx = sy = half * scale + 2
    o = size / 2
    data = (c, -s, sx - c * o + s * o, s, c, sy - s * o - c * o)
    return pil.transform((size, size), Image.Transform.AFFINE, data, resample=Image.Resampling.BICUBIC)
