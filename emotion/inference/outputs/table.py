"""The one per-face table every output shares, and the per-track table: each a column → type schema, with
rows whose empty cells are ``None``.

``predictions.csv`` and a live source's streamed CSV write the rows with empty cells as ``""``;
``predictions.parquet`` and the Ray engine write them typed, with nulls; ``VideoResult.to_pandas`` makes
nullable pandas columns. So a column has one name, one place and one type everywhere, declared here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

__all__ = ["QUALITY_PARTS", "Table", "face_table", "face_rows", "track_table", "track_rows"]

#: Each kind's Arrow and pandas type.
_ARROW = {"str": "string", "int32": "int32", "int64": "int64", "float": "float64", "bool": "bool_"}
_PANDAS = {"str": "string", "int32": "Int64", "int64": "Int64", "float": "Float64", "bool": "boolean"}


@dataclass(frozen=True)
class Table:
    """A table's columns: ``(name, kind)`` pairs, kinds from ``str``, ``int32``, ``int64``, ``float``, ``bool``."""

    columns: tuple[tuple[str, str], ...]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]

    def csv_rows(self, rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
        """The rows as CSV writes them: ``None`` as an empty cell."""
        return [["" if v is None else v for v in row] for row in rows]

    def arrow(self, rows: Sequence[Sequence[Any]]):
        """A typed ``pyarrow.Table`` of the rows (``None`` is null).

        Raises:
            EmotionError: pyarrow is not installed.
        """
        try:
            import pyarrow as pa
        except ImportError:
            from emotion.errors import EmotionError

            raise EmotionError("Parquet needs pyarrow: pip install 'emotion[parquet]' (or pyarrow).") from None
        columns = list(zip(*rows)) or [()] * len(self.columns)
        return pa.table({name: pa.array(list(values), getattr(pa, _ARROW[kind])())
                         for (name, kind), values in zip(self.columns, columns)})

    def pandas(self, rows: Sequence[Sequence[Any]]):
        """A ``pandas.DataFrame`` of the rows with nullable dtypes (``Int64``, ``Float64``, ``string``, ``boolean``)."""
        import pandas as pd

        df = pd.DataFrame([list(r) for r in rows], columns=self.names, dtype=object)
        return df.astype({name: _PANDAS[kind] for name, kind in self.columns})


#: The ``quality_*`` columns: :class:`~emotion.inference.trust.FaceQuality`'s fields.
QUALITY_PARTS = ("overall", "size_px", "sharpness", "yaw", "roll")


def face_table(class_names: Sequence[str]) -> Table:
    """The per-face columns; ``track``, ``detected`` and the ``smooth_*`` columns are filled for videos;
    ``label`` is ``uncertain`` for a held-back face (``uncertain`` says why), ``predicted`` its top class."""
    return Table((("path", "str"), ("frame", "int64"), ("time_s", "float"), ("width", "int32"), ("height", "int32"),
                  ("face", "int32"), ("track", "int64"), ("detected", "bool"), ("x1", "float"), ("y1", "float"),
                  ("x2", "float"), ("y2", "float"), ("score", "float"), ("label", "str"), ("predicted", "str"),
                  ("uncertain", "str"), *[(f"p_{c}", "float") for c in class_names],
                  *[(f"quality_{k}", "float") for k in QUALITY_PARTS], ("explanation", "str"), ("smooth_label", "str"),
                  *[(f"smooth_{c}", "float") for c in class_names]))


def face_rows(results: Sequence[dict[str, Any]], class_names: Sequence[str]) -> list[list[Any]]:
    """One row per face of each result dict (:meth:`~emotion.inference.results.ImageResult.to_dict`), ``None``
    for what a face lacks; an image without faces still gets a row, its face columns ``None``."""
    width = len(face_table(class_names).columns)
    rows = []
    for r in results:
        head = [r["path"], r["frame"], r["time_s"], *r["size"]]
        if not r["faces"]:
            rows.append(head + [None] * (width - len(head)))
        for i, f in enumerate(r["faces"], 1):
            smooth = f.get("smoothed") or {}
            quality = f.get("quality") or {}
            rows.append(head + [i, f.get("track"), f.get("detected"), *f["box"], f["score"], f["label"],
                                f.get("predicted"), f.get("uncertain"),
                                *[f["probabilities"].get(c) for c in class_names],
                                *[quality.get(k) for k in QUALITY_PARTS], f.get("explanation"), f.get("smoothed_label"),
                                *[smooth.get(c) for c in class_names]])
    return rows


def track_table(class_names: Sequence[str]) -> Table:
    """The per-track columns (``<video>_tracks.csv``, ``VideoResult.tracks_pandas``)."""
    return Table((("path", "str"), ("track", "int64"), ("first_s", "float"), ("last_s", "float"), ("frames", "int64"),
                  ("detected_frames", "int64"), ("dominant", "str"), *[(f"mean_{c}", "float") for c in class_names],
                  ("segments", "str")))


def track_rows(summaries: Sequence[Any], class_names: Sequence[str]) -> list[list[Any]]:
    """A row per :class:`~emotion.inference.video.summaries.TrackSummary`; ``segments`` reads
    ``happy 0.00-2.40; neutral 2.44-5.00``."""
    rows = []
    for s in summaries:
        d = s.to_dict()
        segments = "; ".join(f"{g['label']} {g['start_s']:.2f}-{g['end_s']:.2f}" for g in d["segments"])
        rows.append([d["path"], d["track"], d["first_s"], d["last_s"], d["frames"], d["detected"], d["dominant"],
                     *[d["mean"][c] for c in class_names], segments])
    return rows
