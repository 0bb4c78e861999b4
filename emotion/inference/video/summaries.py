"""Emotion over time, per face track: a smoothed series beside the raw one, and a summary per track
(when it was seen, its dominant emotion, mean probabilities, and the segments where one emotion
holds). Both are built online, frame by frame, so that a live stream has them as it goes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

__all__ = ["EmaSmoother", "TrackLog", "TrackSummary"]


class EmaSmoother:
    """An exponential moving average of each track's probabilities with time constant ``tau_s``
    (seconds): a frame ``dt`` after the last one weighs ``1 - exp(-dt / tau_s)``, so the result
    does not depend on the frame rate or on skipped frames. ``tau_s=0``: the raw series."""

    def __init__(self, tau_s: float = 0.5) -> None:
        self.tau_s = max(0.0, float(tau_s))
        self._state: dict[int, tuple[float, np.ndarray]] = {}

    def __call__(self, track: int | None, time_s: float, probs: np.ndarray) -> np.ndarray:
        probs = np.asarray(probs, dtype=np.float64)
        if track is None or self.tau_s == 0:
            return probs
        last = self._state.get(track)
        if last is None:
            out = probs
        else:
            w = 1.0 - math.exp(-max(time_s - last[0], 0.0) / self.tau_s)
            out = (1 - w) * last[1] + w * probs
        self._state[track] = (time_s, out)
        return out


@dataclass
class TrackSummary:
    """One track of one video, as ``<video>_tracks.csv`` has it."""

    path: str | None
    track: int
    first_s: float
    last_s: float
    frames: int
    detected: int
    dominant: str
    mean: dict[str, float]
    segments: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "track": self.track, "first_s": round(self.first_s, 3),
                "last_s": round(self.last_s, 3), "frames": self.frames, "detected": self.detected,
                "dominant": self.dominant, "mean": {k: round(v, 6) for k, v in self.mean.items()},
                "segments": [{**s, "start_s": round(s["start_s"], 3), "end_s": round(s["end_s"], 3)}
                             for s in self.segments]}


@dataclass
class _Track:
    first_s: float
    last_s: float = 0.0
    frames: int = 0
    detected: int = 0
    total: np.ndarray | None = None
    times: list[float] = field(default_factory=list)
    smoothed: list[np.ndarray] = field(default_factory=list)
    segments: list[dict[str, Any]] = field(default_factory=list)
    thumb: np.ndarray | None = None
    thumb_score: float = -1.0


class TrackLog:
    """Everything a video's tracks were seen doing, added one face at a time.

    Args:
        class_names: the classifier's classes, in order.
        min_segment_s: a change of the smoothed label shorter than this does not end a segment
            (it is absorbed into the one around it), so that a blink of another label does not
            cut a segment in two.
    """

    def __init__(self, class_names: Sequence[str], path: str | None = None, min_segment_s: float = 0.0) -> None:
        self.class_names = list(class_names)
        self.path = path
        self.min_segment_s = float(min_segment_s)
        self._tracks: dict[int, _Track] = {}

    def add(self, track: int, time_s: float, probs: np.ndarray, smoothed: np.ndarray, detected: bool,
            score: float = 1.0, crop: np.ndarray | None = None) -> None:
        t = self._tracks.get(track)
        if t is None:
            t = self._tracks[track] = _Track(first_s=time_s, total=np.zeros(len(self.class_names)))
        t.last_s, t.frames, t.detected = time_s, t.frames + 1, t.detected + bool(detected)
        t.total += probs
        t.times.append(time_s)
        t.smoothed.append(np.asarray(smoothed, dtype=np.float32))
        label = self.class_names[int(np.argmax(smoothed))]
        seg = t.segments[-1] if t.segments else None
        if seg is not None and seg["label"] == label:
            seg["end_s"] = time_s
        elif (seg is not None and len(t.segments) >= 2 and t.segments[-2]["label"] == label
              and seg["end_s"] - seg["start_s"] < self.min_segment_s):
            t.segments.pop()  # a blip between two runs of the same label: the runs join
            t.segments[-1]["end_s"] = time_s
        else:
            t.segments.append({"label": label, "start_s": time_s, "end_s": time_s})
        if crop is not None and detected and score > t.thumb_score:
            t.thumb, t.thumb_score = crop, score

    def __len__(self) -> int:
        return len(self._tracks)

    def summaries(self) -> list[TrackSummary]:
        """One summary per track, in order of first appearance."""
        out = []
        for track, t in sorted(self._tracks.items(), key=lambda kv: (kv[1].first_s, kv[0])):
            mean = t.total / max(t.frames, 1)
            out.append(TrackSummary(self.path, track, t.first_s, t.last_s, t.frames, t.detected,
                                    self.class_names[int(np.argmax(mean))],
                                    {c: float(v) for c, v in zip(self.class_names, mean)},
                                    [dict(s) for s in t.segments]))
        return out

    def series(self, track: int) -> tuple[np.ndarray, np.ndarray]:
        """A track's times (N,) and smoothed probabilities (N, C)."""
        t = self._tracks[track]
        return np.asarray(t.times), np.stack(t.smoothed)

    def thumbnail(self, track: int) -> np.ndarray | None:
        """The 48×48 face of the track's most confident detection."""
        return self._tracks[track].thumb
