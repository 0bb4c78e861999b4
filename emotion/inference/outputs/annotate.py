"""Figures of predictions, drawn with PIL: boxes and labels on the photo, and a panel that shows
each 48×48 face the classifier saw with a bar per class."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

from emotion.inference.results import ImageResult
from emotion.inference.trust.quality import UNCERTAIN

__all__ = ["CLASS_COLORS", "UNCERTAIN_COLOR", "class_color", "face_tag", "draw_boxes", "draw_figure", "draw_tracks_bgr"]

#: Okabe–Ito colours (distinguishable with colour-blindness), one per FER2013 class.
CLASS_COLORS: dict[str, tuple[int, int, int]] = {
    "angry": (213, 94, 0), "disgust": (0, 158, 115), "fear": (204, 121, 167), "happy": (230, 159, 0),
    "sad": (0, 114, 178), "surprise": (86, 180, 233), "neutral": (127, 127, 127),
}
_OTHER = [(0, 0, 0), (240, 228, 66), (153, 79, 0), (102, 102, 255)]
#: Held-back ("uncertain") faces are drawn in this light grey, thin, with their top class in brackets.
UNCERTAIN_COLOR = (190, 190, 190)
MAX_PANEL_FACES = 48  # beyond this the panel says "+N more": the photo still shows every box
FACE_PX = 96  # each 48×48 face is shown at 2× (nearest neighbour: the pixels the model saw)


def class_color(name: str) -> tuple[int, int, int]:
    """The colour of a class (stable for unknown names too); light grey for ``uncertain``."""
    if name == UNCERTAIN:
        return UNCERTAIN_COLOR
    return CLASS_COLORS.get(name, _OTHER[sum(map(ord, name)) % len(_OTHER)])


def face_tag(face) -> str:
    """``label p%``, or ``? (happy 41%)`` for a held-back face."""
    if face.is_uncertain:
        return f"? ({face.predicted} {face.confidence:.0%})"
    return f"{face.label} {face.confidence:.0%}"


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _text_color(bg: tuple[int, int, int]) -> tuple[int, int, int]:
    return (0, 0, 0) if 0.299 * bg[0] + 0.587 * bg[1] + 0.114 * bg[2] > 150 else (255, 255, 255)


def draw_boxes(image: Image.Image, result: ImageResult, scale: float = 1.0) -> Image.Image:
    """Boxes, landmarks and ``#i label p%`` tags drawn on a copy of ``image``.

    Args:
        image: the photo, already resized by ``scale`` relative to ``result``'s coordinates.
        result: the predictions.
        scale: factor from result pixels to ``image`` pixels.
    """
    out = image.convert("RGB")  # a copy, for RGB input too
    draw = ImageDraw.Draw(out)
    side = min(out.size)
    width = max(2, round(side / 250))
    font = _font(max(12, round(side / 38)))
    for i, face in enumerate(result.faces, 1):
        color = class_color(face.label)
        x1, y1, x2, y2 = (v * scale for v in face.box)
        draw.rectangle((x1, y1, x2, y2), outline=color, width=max(1, width // 2) if face.is_uncertain else width)
        r = max(1.5, width * 0.8)
        for px, py in face.landmarks or ():
            draw.ellipse((px * scale - r, py * scale - r, px * scale + r, py * scale + r), fill=color)
        tag = f"{i} {face_tag(face)}"
        tl, tt, tr, tb = draw.textbbox((0, 0), tag, font=font)
        tw, th = tr - tl + 2 * width, tb - tt + 2 * width
        ty = y1 - th if y1 - th >= 0 else y2  # above the box, or below it at the top edge
        tx = min(max(x1, 0), max(out.width - tw, 0))
        draw.rectangle((tx, ty, tx + tw, ty + th), fill=color)
        draw.text((tx + width - tl, ty + width - tt), tag, fill=_text_color(color), font=font)
    return out


def _face_panel(result: ImageResult, class_names: Sequence[str], height: int) -> Image.Image:
    """Columns of rows: index, the 48×48 face (2×), one bar per class with its percentage."""
    font, small = _font(14), _font(12)
    bar_h, gap = 13, 2
    row_h = max(FACE_PX, len(class_names) * (bar_h + gap)) + 14
    name_w = max(round(small.getlength(n)) for n in class_names) + 6 if class_names else 0
    bar_w, pct_w = 120, 40
    col_w = 28 + FACE_PX + 10 + name_w + bar_w + pct_w + 12
    header = 30
    faces = result.faces[:MAX_PANEL_FACES]
    per_col = max(1, (max(height, header + row_h) - header) // row_h)
    ncols = max(1, math.ceil(len(faces) / per_col))
    panel_h = max(height, header + min(len(faces), per_col) * row_h + 8)
    panel = Image.new("RGB", (ncols * col_w, panel_h), "white")
    draw = ImageDraw.Draw(panel)
    title = f"{len(result.faces)} face{'s' if len(result.faces) != 1 else ''}"
    if len(result.faces) > len(faces):
        title += f" (first {len(faces)} shown)"
    if not result.faces:
        title = "no faces found"
    draw.text((12, 8), title, fill=(0, 0, 0), font=font)
    for k, face in enumerate(faces):
        col, row = divmod(k, per_col)
        x0, y0 = col * col_w + 8, header + row * row_h
        color = class_color(face.label)
        draw.text((x0, y0 + 2), str(k + 1), fill=color, font=font)
        fx = x0 + 24
        if face.crop is not None:
            crop = Image.fromarray(face.crop).resize((FACE_PX, FACE_PX), Image.Resampling.NEAREST).convert("RGB")
            if face.is_uncertain:  # greyed out: half way to white
                crop = Image.blend(crop, Image.new("RGB", crop.size, "white"), 0.5)
            panel.paste(crop, (fx, y0))
        draw.rectangle((fx - 2, y0 - 2, fx + FACE_PX + 1, y0 + FACE_PX + 1), outline=color, width=2)
        bx = fx + FACE_PX + 10
        for j, name in enumerate(class_names):
            p = float(face.probabilities.get(name, 0.0))
            by = y0 + j * (bar_h + gap)
            bold = name == face.label  # a held-back face has no bold row
            draw.text((bx, by), name, fill=(0, 0, 0) if bold else (90, 90, 90), font=small)
            left = bx + name_w
            draw.rectangle((left, by + 1, left + bar_w, by + bar_h - 1), fill=(236, 236, 236))
            if p > 0:
                draw.rectangle((left, by + 1, left + max(1, round(p * bar_w)), by + bar_h - 1),
                               fill=class_color(name) if bold else (160, 160, 160))
            draw.text((left + bar_w + 4, by), f"{p:.0%}", fill=(0, 0, 0) if bold else (90, 90, 90), font=small)
    return panel


def draw_figure(image: Image.Image, result: ImageResult, class_names: Sequence[str],
                max_side: int = 1280, min_height: int = 420) -> Image.Image:
    """The annotated photo (resized to at most ``max_side``, at least ``min_height`` tall) and, to
    its right, the face panel."""
    w, h = image.size
    scale = min(max_side / max(w, h), max(1.0, min_height / h))
    shown = image if scale == 1.0 else image.resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                                    Image.Resampling.LANCZOS, reducing_gap=2.0)
    photo = draw_boxes(shown, result, scale)
    panel = _face_panel(result, list(class_names) or sorted({n for f in result.faces for n in f.probabilities}),
                        photo.height)
    fig = Image.new("RGB", (photo.width + panel.width, max(photo.height, panel.height)), "white")
    fig.paste(photo, (0, 0))
    fig.paste(panel, (photo.width, 0))
    return fig


def draw_tracks_bgr(bgr, result: ImageResult):
    """Each face's box with ``#track label p%`` (the smoothed label) drawn in place on a BGR video
    frame, with OpenCV: no RGB/PIL round trip of the whole frame (experiments/results/bench_video.md
    gives the annotated video's cost)."""
    import cv2

    h, w = bgr.shape[:2]
    thick = max(2, round(min(w, h) / 360))
    font_scale = max(0.5, min(w, h) / 1400)
    for face in result.faces:
        label = face.smoothed_label
        r, g, b = UNCERTAIN_COLOR if face.is_uncertain else class_color(label)
        color = (b, g, r)
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        cv2.rectangle(bgr, (x1, y1), (x2, y2), color, thick if face.detected else max(1, thick // 2), cv2.LINE_AA)
        track = "" if face.track is None or face.track < 0 else f"#{face.track} "
        p = (face.smoothed or face.probabilities)[label]
        tag = f"{track}{'? ' if face.is_uncertain else ''}{label} {p:.0%}"
        (tw, th), base = cv2.getTextSize(tag, cv2.FONT_HERSHEY_SIMPLEX, font_scale, max(1, thick // 2))
        ty = y1 - th - base - 2 * thick if y1 - th - base - 2 * thick >= 0 else y2
        tx = min(max(x1, 0), max(w - tw - 2 * thick, 0))
        cv2.rectangle(bgr, (tx, ty), (tx + tw + 2 * thick, ty + th + base + 2 * thick), color, -1)
        text = _text_color((r, g, b))
        cv2.putText(bgr, tag, (tx + thick, ty + th + thick), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                    text[::-1], max(1, thick // 2), cv2.LINE_AA)
    return bgr
