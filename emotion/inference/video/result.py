"""A whole video's results in memory (for notebooks): every analysed frame and a summary per track, as
pandas tables with the columns of the results files."""

from __future__ import annotations

from dataclasses import dataclass, field

from emotion.inference.results import ImageResult
from emotion.inference.video.source import VideoInfo
from emotion.inference.video.summaries import TrackLog, TrackSummary

__all__ = ["VideoResult"]


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
        from emotion.inference.outputs.table import face_rows, face_table

        return face_table(self.class_names).pandas(face_rows([f.to_dict() for f in self.frames], self.class_names))

    def tracks_pandas(self):
        from emotion.inference.outputs.table import track_rows, track_table

        return track_table(self.class_names).pandas(track_rows(self.tracks, self.class_names))
