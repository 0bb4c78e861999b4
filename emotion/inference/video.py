"""Video frames in (OpenCV), annotated frames out: every N-th frame as an upright RGB image."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from emotion.errors import EmotionError
from emotion.inference.annotate import draw_boxes
from emotion.inference.results import ImageResult

__all__ = ["VideoInfo", "open_video", "iter_frames", "iter_video_results", "VideoWriter"]

@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video (``frames`` is 0 when unknown)."""

    fps: float
    frames: int
    width: int
    height: int


def open_video(path: str | os.PathLike):
    """An opened ``cv2.VideoCapture`` and its :class:`VideoInfo`.

    Raises:
        EmotionError: missing file, or nothing OpenCV can decode.
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        raise EmotionError(f"'{path}' not found.")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise EmotionError(f"'{path}' cannot be read as a video (unknown codec or corrupt file).")
    fps = cap.get(cv2.CAP_PROP_FPS)
    info = VideoInfo(fps=float(fps) if fps and fps > 0 else 25.0,  # some containers omit it
                     frames=max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0),
                     width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    return cap, info


def iter_frames(cap, every: int = 1) -> Iterator[tuple[int, Image.Image]]:
    """Yield ``(frame index, RGB image)`` for every ``every``-th frame; skipped frames are only
    grabbed, not decoded."""
    import cv2

    every = max(1, int(every))
    index = 0
    try:
        while True:
            if index % every == 0:
                ok, bgr = cap.read()
                if not ok:
                    return
                yield index, Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            elif not cap.grab():
                return
            index += 1
    finally:
        cap.release()


def iter_video_results(predictor, path: str | os.PathLike, every: int = 1
                       ) -> Iterator[tuple[VideoInfo, Image.Image, ImageResult]]:
    """Every ``every``-th frame of the video at ``path`` with its :class:`ImageResult` (``frame``
    and ``time_s`` set), as ``(info, frame, result)``.

    Raises:
        EmotionError: the file cannot be opened as a video, or no frame of it decodes.
    """
    cap, info = open_video(path)
    n = 0
    for index, frame in iter_frames(cap, every):
        n += 1
        yield info, frame, predictor.predict_rgb(frame, path=str(path), frame=index, time_s=index / info.fps)
    if n == 0:
        raise EmotionError(f"'{path}' has no decodable frames.")


class VideoWriter:
    """Write annotated frames (boxes and labels drawn on the frame) to a video file.

    Args:
        path: output file; ``.mp4`` is written with the ``mp4v`` codec, ``.avi`` with MJPG.
        fps: frame rate of the output (the input's rate divided by the frame step).
        size: ``(width, height)`` of the frames.
    """

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int]) -> None:
        import cv2

        fourcc = cv2.VideoWriter_fourcc(*("MJPG" if str(path).lower().endswith(".avi") else "mp4v"))
        self._cv2 = cv2
        self.size = size
        self.writer = cv2.VideoWriter(str(path), fourcc, max(fps, 1.0), size)
        if not self.writer.isOpened():
            raise EmotionError(f"cannot write video '{path}' (no encoder for it in this OpenCV build).")

    def write(self, frame: Image.Image, result: ImageResult) -> None:
        """Append ``frame`` with ``result`` drawn on it."""
        rgb = np.asarray(draw_boxes(frame, result))
        self.writer.write(self._cv2.cvtColor(rgb, self._cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        self.writer.release()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
