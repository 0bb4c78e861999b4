"""The annotated video a run writes: each face's box with its track id and smoothed label, drawn and
encoded in a background thread beside the analysis."""

from __future__ import annotations

import os
import queue
import threading

import numpy as np

from emotion.errors import EmotionError
from emotion.inference.results import ImageResult

__all__ = ["VideoWriter"]


class VideoWriter:
    """Write annotated frames (the track id and smoothed label on each face's box) to a video file;
    drawing and encoding run in a background thread, beside the analysis.

    Args:
        path: output file; ``.mp4`` is written with the ``mp4v`` codec, ``.avi`` with MJPG.
        fps: frame rate of the output (the input's rate divided by the frame step).
        size: ``(width, height)`` of the frames.
    """

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int], depth: int = 8) -> None:
        import cv2

        fourcc = cv2.VideoWriter_fourcc(*("MJPG" if str(path).lower().endswith(".avi") else "mp4v"))
        self.size = size
        self.writer = cv2.VideoWriter(str(path), fourcc, max(fps, 1.0), size)
        if not self.writer.isOpened():
            raise EmotionError(f"cannot write video '{path}' (no encoder for it in this OpenCV build).")
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="emotion-video-writer")
        self._thread.start()

    def _run(self) -> None:
        from emotion.inference.outputs.annotate import draw_tracks_bgr

        while (item := self._queue.get()) is not None:
            try:
                bgr, result = item
                self.writer.write(draw_tracks_bgr(bgr, result))
            except BaseException as e:  # noqa: BLE001 - reported by close(), in the caller's thread
                self._error = e

    def write(self, bgr: np.ndarray, result: ImageResult) -> None:
        """Append the BGR frame with ``result`` drawn on it (a frame of another size is skipped)."""
        if (bgr.shape[1], bgr.shape[0]) == self.size:
            self._queue.put((bgr, result))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self.writer.release()
        if self._error is not None:
            raise EmotionError(f"writing the annotated video failed: {self._error}")

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
