"""A video source: a file, a webcam or a stream opened once with OpenCV, what it says about itself, and a
background thread that decodes its frames (dropping, and counting, what a live source's analysis misses)."""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from emotion.errors import EmotionError

__all__ = ["VideoInfo", "open_video", "probe_video", "is_live_source"]


def is_live_source(source: object) -> bool:
    """A webcam index (``0``) or a stream URL (``rtsp://``, ``http://``, …), not a file."""
    s = str(source)
    return s.isdigit() or "://" in s


@dataclass(frozen=True)
class VideoInfo:
    """What the source says about itself (``frames`` is 0 when unknown, as for live sources)."""

    source: str
    fps: float
    frames: int
    width: int
    height: int
    live: bool = False


def open_video(source: str | int | os.PathLike):
    """An opened ``cv2.VideoCapture`` and its :class:`VideoInfo`.

    Raises:
        EmotionError: a missing or empty file, or nothing OpenCV can open (unknown codec, corrupt
            file, no such camera, an unreachable stream).
    """
    import cv2

    live = is_live_source(source) and not Path(str(source)).exists()
    if live:
        cap = cv2.VideoCapture(int(source) if str(source).isdigit() else str(source))
        if not cap.isOpened():
            what = "camera" if str(source).isdigit() else "stream"
            raise EmotionError(f"'{source}': cannot open this {what} (is it connected and reachable?).")
    else:
        path = Path(source)
        if not path.is_file():
            raise EmotionError(f"'{path}' not found.")
        if path.stat().st_size == 0:
            raise EmotionError(f"'{path}' is empty (0 bytes).")
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise EmotionError(f"'{path}' cannot be read as a video (unknown codec or corrupt file).")
    fps = cap.get(cv2.CAP_PROP_FPS)
    info = VideoInfo(source=str(source), fps=float(fps) if fps and 0 < fps < 1000 else 25.0,  # some omit it
                     frames=0 if live else max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0),
                     width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                     live=live)
    return cap, info


def probe_video(source: str | int | os.PathLike) -> VideoInfo:
    """What :func:`open_video` learns about ``source``, the capture closed again (it raises as that does)."""
    cap, info = open_video(source)
    cap.release()
    return info


class _Reader(threading.Thread):
    """Decodes frames ahead of the analysis. Every ``every``-th frame is decoded (the others only
    grabbed). ``realtime``: frames are released at the source's pace and only the newest waits;
    one the analysis had no time for is dropped and counted."""

    def __init__(self, cap, info: VideoInfo, every: int, realtime: bool, depth: int = 8) -> None:
        super().__init__(daemon=True, name="emotion-video-reader")
        self.cap, self.info, self.every, self.realtime = cap, info, max(1, every), realtime
        self.frames: queue.Queue = queue.Queue(maxsize=1 if realtime else depth)
        self.read = self.dropped = 0
        self._halt = threading.Event()

    def run(self) -> None:
        index, start = 0, time.perf_counter()
        try:
            while not self._halt.is_set():
                if index % self.every:
                    if not self.cap.grab():
                        break
                    index += 1
                    continue
                ok, bgr = self.cap.read()
                if not ok:
                    break
                self.read += 1
                if self.realtime and not self.info.live:  # a file played at its own frame rate
                    wait = start + index / self.info.fps - time.perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                self._put((index, bgr))
                index += 1
        finally:
            self.cap.release()
            self._put(None, last=True)

    def _put(self, item: Any, last: bool = False) -> None:
        if self.realtime and not last:  # the newest frame replaces one still waiting
            while True:
                try:
                    self.frames.put_nowait(item)
                    return
                except queue.Full:
                    try:
                        self.frames.get_nowait()
                        self.dropped += 1
                    except queue.Empty:
                        pass
        while not self._halt.is_set():  # the end, or any frame of a file read at full speed, waits
            try:
                self.frames.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        while True:
            item = self.frames.get()
            if item is None:
                return
            yield item

    def stop(self) -> None:
        """End early (the consumer is gone); the capture is released before this returns."""
        self._halt.set()
        self.join(timeout=5)
