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
        import pandas as pd

        from emotion.inference.outputs.writers import csv_header, csv_rows

        rows = csv_rows([f.to_dict() for f in self.frames], self.class_names)
        df = pd.DataFrame(rows, columns=csv_header(self.class_names)).replace("", None)
        ints = {"frame": "Int64", "width": "Int64", "height": "Int64", "face": "Int64", "track": "Int64",
                "detected": "boolean"}
        for col in df.columns:
            df[col] = df[col].astype(ints.get(col, "string" if col in ("path", "label", "smooth_label") else "Float64"))
        return df

    def tracks_pandas(self):
        import pandas as pd

        from emotion.inference.video.summaries import tracks_header, tracks_rows

        return pd.DataFrame(tracks_rows(self.tracks, self.class_names), columns=tracks_header(self.class_names))
