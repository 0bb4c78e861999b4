"""Video as an input: files, webcams and streams in (OpenCV), face tracks and emotion over time out.

One pass over the frames: a background thread decodes; the main thread detects faces (every
``detect_every``-th analysed frame, on a downscaled copy), tracks them (:mod:`~emotion.inference.tracking`),
classifies every tracked face of every frame, and smooths each track's probabilities
(:mod:`~emotion.inference.tracks`). A live source (a webcam, a stream, or a file played at its own
frame rate) never lags: when analysis falls behind, the frames it missed are dropped and counted.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from PIL import Image

from emotion.errors import EmotionError
from emotion.inference.inputs import is_live_source
from emotion.inference.results import ImageResult
from emotion.inference.tracking import NO_TRACK, FaceTracker
from emotion.inference.tracks import EmaSmoother, TrackLog, TrackSummary

__all__ = ["VideoInfo", "VideoFrame", "VideoResult", "open_video", "probe_video", "iter_video_results",
           "analyze_video", "VideoWriter", "VIDEO_DETECT_MAX_SIDE", "DETECT_EVERY"]

#: Video frames are searched for faces on a copy at most this large (longest side). The smallest
#: face searched for in a 1080p frame is 40-56 px (``min_face_for``), still 20-28 px on the copy.
VIDEO_DETECT_MAX_SIDE = 960
#: Detect faces on every this many analysed frames by default; the tracks carry them between.
DETECT_EVERY = 1


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


@dataclass
class VideoFrame:
    """One analysed frame: its index, the decoded BGR pixels and its result."""

    index: int
    bgr: np.ndarray
    result: ImageResult


@dataclass
class VideoResult:
    """A whole video's results: every analysed frame, and a summary per track.

    ``to_pandas()`` gives a row per face per frame, the columns of ``predictions.csv`` (as
    `fer`'s ``Video.analyze(output="pandas")`` and py-feat's ``Fex`` do); ``tracks_pandas()`` a row
    per track, the columns of ``<video>_tracks.csv``.
    """

    info: VideoInfo
    frames: list[ImageResult]
    tracks: list[TrackSummary]
    class_names: list[str]
    dropped: int = 0
    log: TrackLog | None = field(default=None, repr=False)

    def to_pandas(self):
        import pandas as pd

        from emotion.inference.writers import csv_header, csv_rows

        rows = csv_rows([f.to_dict() for f in self.frames], self.class_names)
        df = pd.DataFrame(rows, columns=csv_header(self.class_names)).replace("", None)
        ints = {"frame": "Int64", "width": "Int64", "height": "Int64", "face": "Int64", "track": "Int64",
                "detected": "boolean"}
        for col in df.columns:
            df[col] = df[col].astype(ints.get(col, "string" if col in ("path", "label", "smooth_label") else "Float64"))
        return df

    def tracks_pandas(self):
        import pandas as pd

        from emotion.inference.tracks import tracks_header, tracks_rows

        return pd.DataFrame(tracks_rows(self.tracks, self.class_names), columns=tracks_header(self.class_names))


def _small_rgb(bgr: np.ndarray, max_side: int) -> tuple[Image.Image, float]:
    """The frame as RGB at most ``max_side`` long, and its scale: OpenCV resizes the BGR frame first,
    so only the small copy is converted, and no full-size RGB copy is made."""
    import cv2

    h, w = bgr.shape[:2]
    scale = min(1.0, max_side / max(w, h))
    if scale < 1.0:
        bgr = cv2.resize(bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)), scale


def iter_video_results(predictor, source: str | int | os.PathLike, *, every: int = 1, detect_every: int = DETECT_EVERY,
                       smooth_s: float = 0.5, realtime: bool | None = None, max_side: int = VIDEO_DETECT_MAX_SIDE,
                       log: TrackLog | None = None, stats: dict | None = None) -> Iterator[VideoFrame]:
    """Every ``every``-th frame of ``source`` with its :class:`ImageResult`: ``frame``, ``time_s``,
    and per face its track, whether it was detected in this frame, and the smoothed probabilities.

    Args:
        predictor: a :class:`~emotion.inference.FaceEmotionPredictor`.
        source: a video file, a webcam index or a stream URL.
        every: analyse every ``every``-th frame (the others are not decoded).
        detect_every: run the detector on every ``detect_every``-th analysed frame; between, the
            tracks' boxes are carried (:meth:`FaceTracker.carry`) and their faces still classified.
        smooth_s: the smoothing time constant in seconds (0: the raw series).
        realtime: drop frames rather than lag (default: for webcams and streams).
        max_side: detect on a copy downscaled to this longest side.
        log: a :class:`TrackLog` to fill (the per-track summaries).
        stats: filled with ``read``, ``analysed`` and ``dropped`` frame counts.

    Raises:
        EmotionError: the source cannot be opened; no frame decodes; or, after the frames that
            did decode were yielded, decoding stopped before the container's last frame.
    """
    import cv2

    cap, info = open_video(source)
    realtime = info.live if realtime is None else realtime
    tracker = FaceTracker(info.fps / max(1, every), detect_every=detect_every)
    smoother = EmaSmoother(smooth_s)
    reader = _Reader(cap, info, every, realtime)
    reader.start()
    stats = {} if stats is None else stats
    n = 0
    label = str(source)
    try:
        for index, bgr in reader:
            time_s = index / info.fps
            h, w = bgr.shape[:2]
            if n % max(1, detect_every) == 0:
                small, scale = _small_rgb(bgr, max_side)
                min_face = predictor.detector.min_face_for((w, h))
                det, tracks, detected = tracker.update(
                    index, predictor.detector.detect_scaled(small, scale, (w, h), min_face=min_face))
            else:
                det, tracks, detected = tracker.carry(index)
            gray = Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
            crops = predictor.faces(gray, det)
            probs = predictor.classify(crops)
            per_face = []
            for i in range(len(det)):
                track = int(tracks[i])
                smooth = smoother(None if track == NO_TRACK else track, time_s, probs[i])
                per_face.append({"track": track, "detected": bool(detected[i]),
                                 "smoothed": {c: float(v) for c, v in zip(predictor.class_names, smooth)}})
                if log is not None and track != NO_TRACK:
                    log.add(track, time_s, probs[i].astype(np.float64) / probs[i].sum(), smooth, bool(detected[i]),
                            float(det.scores[i]), crops[i])
            result = predictor.result((w, h), det, crops, probs, path=label, frame=index, time_s=time_s,
                                      per_face=per_face)
            n += 1
            yield VideoFrame(index, bgr, result)
    finally:
        reader.stop()
        stats.update(read=reader.read, analysed=n, dropped=reader.dropped)
    if n == 0:
        raise EmotionError(f"'{label}' has no decodable frames.")
    expected = -(-info.frames // max(1, every)) if info.frames else 0
    if not info.live and expected and reader.read < expected - 1:
        raise EmotionError(f"'{label}': decoding stopped at frame {reader.read * max(1, every)} of {info.frames} "
                           f"(truncated or corrupt); the {n} frames before are kept.")


def analyze_video(predictor, source: str | int | os.PathLike, **options: Any) -> VideoResult:
    """All of a video's results in memory (for notebooks; see :class:`VideoResult`). ``options``
    are :func:`iter_video_results`'s."""
    info = probe_video(source)
    log = TrackLog(predictor.class_names, path=str(source))
    stats: dict = {}
    frames = [f.result for f in iter_video_results(predictor, source, log=log, stats=stats, **options)]
    return VideoResult(info, frames, log.summaries(), list(predictor.class_names), stats.get("dropped", 0), log)


def probe_video(source: str | int | os.PathLike) -> VideoInfo:
    """What :func:`open_video` learns about ``source``, the capture closed again (it raises as that does)."""
    cap, info = open_video(source)
    cap.release()
    return info


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
        from emotion.inference.annotate import draw_tracks_bgr

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
