"""Video as an input: files, webcams and streams in (OpenCV), face tracks and emotion over time out.

One pass over the frames: a background thread decodes; the main thread detects faces (on a downscaled copy:
at least every ``detect_every``-th analysed frame, and between whenever the tracks are unsettled), tracks
them (:mod:`~emotion.inference.video.tracker`), classifies the tracked faces, and smooths each track's probabilities
(:mod:`~emotion.inference.video.summaries`). A live source (a webcam, a stream, or a file played at its own
frame rate) never lags: when analysis falls behind, the frames it missed are dropped and counted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any, Iterator

import numpy as np
from PIL import Image

from emotion.data.preprocess import FER_SIZE
from emotion.errors import EmotionError
from emotion.inference.results import ImageResult
from emotion.inference.video.result import VideoResult
from emotion.inference.video.source import VideoInfo, _Reader, open_video
from emotion.inference.video.summaries import EmaSmoother, TrackLog
from emotion.inference.video.tracker import NO_TRACK, FaceTracker

__all__ = ["VideoOptions", "VideoFrame", "iter_video_results", "analyze_video", "VIDEO_DETECT_MAX_SIDE",
           "DETECT_EVERY"]

#: Video frames are searched for faces on a copy at most this large (longest side). The smallest
#: face searched for in a 1080p frame is 40-56 px (``min_face_for``), still 20-28 px on the copy.
VIDEO_DETECT_MAX_SIDE = 960
#: Detect faces at least on every this many analysed frames by default; the tracks carry them between
#: when they are settled (``VideoOptions.adaptive``). Measured (experiments/results/bench_video.md and
#: tracking_check.md, AMD EPYC, 2 cores): on the street clip, K = 2 adaptive keeps recall within 0.2
#: points of detecting every frame (78.3 % against 78.5 %) with no ID switch, and the tracking check's
#: seven scenes score as every frame does; K = 3 adaptive loses the moving scene 2.4 points (97.1 %).
DETECT_EVERY = 2


@dataclass(frozen=True)
class VideoOptions:
    """How a video is analysed: one typed value from the CLI (``--every``, ``--detect-every``, ``--smooth``,
    ``--live``) through the session to the pipeline, and into ``predictions.json``'s settings.

    Attributes:
        every: analyse every ``every``-th frame (the others are not decoded).
        detect_every: run the detector at least on every ``detect_every``-th analysed frame; between, the
            tracks' boxes are carried (:meth:`FaceTracker.carry`).
        smooth_s: the smoothing time constant in seconds (0: the raw series).
        realtime: drop frames rather than lag (``None``: for webcams and streams).
        max_side: detect on a copy downscaled to this longest side.
        refine: between full detections, find each tracked face again near where its track expects it
            (:meth:`FaceDetector.refine`: MTCNN's last stage alone) and track those as this frame's
            detections, rather than carry the boxes; ``detected`` is then true for them too.
        adaptive: detect between the ``detect_every``-th frames too, whenever the tracks are unsettled
            (:meth:`FaceTracker.unsettled`: no face tracked, a face come or gone or missed at the last
            detection, a face past the frame's border, two faces drawing close); a carried face of a confirmed
            track keeps its last crop and probabilities (``detected`` false). ``False``: detect on exactly
            every ``detect_every``-th frame and classify every carried face.
    """

    every: int = 1
    detect_every: int = DETECT_EVERY
    smooth_s: float = 0.5
    realtime: bool | None = None
    max_side: int = VIDEO_DETECT_MAX_SIDE
    refine: bool = False
    adaptive: bool = True

    def settings(self) -> dict[str, Any]:
        """What ``predictions.json`` records of them."""
        return {"every": self.every, "detect_every": self.detect_every, "smooth_s": self.smooth_s,
                "refine": self.refine, "adaptive": self.adaptive}


@dataclass
class VideoFrame:
    """One analysed frame: its index, the decoded BGR pixels and its result."""

    index: int
    bgr: np.ndarray
    result: ImageResult


def _small_rgb(bgr: np.ndarray, max_side: int) -> tuple[Image.Image, float]:
    """The frame as RGB at most ``max_side`` long, and its scale: OpenCV resizes the BGR frame first,
    so only the small copy is converted, and no full-size RGB copy is made."""
    import cv2

    h, w = bgr.shape[:2]
    scale = min(1.0, max_side / max(w, h))
    if scale < 1.0:
        bgr = cv2.resize(bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)), scale


def iter_video_results(predictor, source: str | int | os.PathLike, options: VideoOptions | None = None, *,
                       opened: tuple[Any, VideoInfo] | None = None, log: TrackLog | None = None,
                       stats: dict | None = None, **overrides: Any) -> Iterator[VideoFrame]:
    """Every ``every``-th frame of ``source`` with its :class:`ImageResult`: ``frame``, ``time_s``,
    and per face its track, whether it was detected in this frame, and the smoothed probabilities.

    Args:
        predictor: a :class:`~emotion.inference.FaceEmotionPredictor`.
        source: a video file, a webcam index or a stream URL.
        options: :class:`VideoOptions`; ``overrides`` (``every=2``, …) replace single fields.
        opened: ``source`` already opened by :func:`open_video` (a caller that read its
            :class:`VideoInfo` first), so that it is opened once: a stream URL is one connection.
        log: a :class:`TrackLog` to fill (the per-track summaries).
        stats: filled with ``read``, ``analysed`` and ``dropped`` frame counts.

    Raises:
        EmotionError: the source cannot be opened; no frame decodes; or, after the frames that
            did decode were yielded, decoding stopped before the container's last frame.
    """
    import cv2

    o = replace(options or VideoOptions(), **overrides)
    every, detect_every, max_side = o.every, o.detect_every, o.max_side
    cap, info = opened or open_video(source)
    realtime = info.live if o.realtime is None else o.realtime
    # Refined, every frame has detections (full, or the tracks' faces found again): the tracker runs at
    # the frame rate.
    rate = info.fps / max(1, every)
    tracker = FaceTracker(rate, detect_every=1 if o.refine or o.adaptive else detect_every)
    smoother = EmaSmoother(o.smooth_s)
    reader = _Reader(cap, info, every, realtime)
    reader.start()
    stats = {} if stats is None else stats
    n = 0
    last_detect = -max(1, detect_every)
    known: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # each track's last crop and probabilities
    label = str(source)
    try:
        for index, bgr in reader:
            time_s = index / info.fps
            h, w = bgr.shape[:2]
            gap = n - last_detect
            if gap >= max(1, detect_every) or (o.adaptive and tracker.unsettled(index, (w, h))):
                last_detect = n
                small, scale = _small_rgb(bgr, max_side)
                det, tracks, detected = tracker.update(index, predictor.detector.detect_scaled(small, scale, (w, h)))
            elif o.refine:
                carried, _, _ = tracker.carry(index)
                found = tracker.found_again(carried, predictor.detector.refine(bgr[..., ::-1], carried.boxes))
                det, tracks, detected = tracker.update(index, found)
            else:
                det, tracks, detected = tracker.carry(index)
                if o.adaptive:
                    tracker.tick()
            # Adaptive, a carried face of a confirmed track keeps its last crop and probabilities: its box is
            # only a guess at this frame, and the next frame is searched again (the gap is at most detect_every).
            reused = np.asarray([o.adaptive and not d and int(t) in known for t, d in zip(tracks, detected)], bool)
            crops = np.zeros((len(det), FER_SIZE, FER_SIZE), np.uint8)
            probs = np.zeros((len(det), len(predictor.class_names)), np.float32)
            for i in np.flatnonzero(reused):
                crops[i], probs[i] = known[int(tracks[i])]
            fresh = np.flatnonzero(~reused)
            if len(fresh):
                gray = Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
                crops[fresh] = predictor.faces(gray, det.take(fresh))
                probs[fresh] = predictor.classify(crops[fresh])
            known = {int(t): (crops[i], probs[i]) for i, t in enumerate(tracks) if t != NO_TRACK}
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


def analyze_video(predictor, source: str | int | os.PathLike, options: VideoOptions | None = None,
                  **overrides: Any) -> VideoResult:
    """All of a video's results in memory (for notebooks; see :class:`VideoResult`); ``options`` and
    ``overrides`` as :func:`iter_video_results` takes them. The source is opened once."""
    cap, info = open_video(source)
    log = TrackLog(predictor.class_names, path=str(source))
    stats: dict = {}
    frames = [f.result for f in iter_video_results(predictor, source, options, opened=(cap, info), log=log,
                                                   stats=stats, **overrides)]
    return VideoResult(info, frames, log.summaries(), list(predictor.class_names), stats.get("dropped", 0), log)


