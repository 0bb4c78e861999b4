"""The results files: ``predictions.json`` (with the model and settings that made it),
``predictions.csv`` or ``predictions.parquet`` (a row per face: the face table), and a video's
``<video>_tracks.csv`` (the track table), written atomically. The CLI, the service and bulk runs share them."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Sequence

from emotion.inference.outputs.table import Table, face_rows, face_table, track_rows, track_table
from emotion.inference.results import SCHEMA_VERSION

__all__ = ["results_document", "write_csv", "write_parquet", "write_tracks_csv"]


def results_document(describe: dict[str, Any], results: list[dict[str, Any]], errors: list[dict[str, str]],
                     **settings: Any) -> dict[str, Any]:
    """The ``predictions.json`` document: ``describe`` is :meth:`FaceEmotionPredictor.describe`;
    ``settings`` adds run settings (``every`` for videos)."""
    return {"schema_version": SCHEMA_VERSION, "model": describe["model"],
            "settings": {**describe["settings"], **settings}, "results": results, "errors": errors}


def write_csv(path: str | os.PathLike, results: list[dict[str, Any]], class_names: Sequence[str]) -> Path:
    """``predictions.csv``: the face table (:func:`~emotion.inference.outputs.table.face_table`), atomically."""
    return _write_csv(path, face_table(class_names), face_rows(results, class_names))


def write_parquet(path: str | os.PathLike, results: list[dict[str, Any]], class_names: Sequence[str]) -> Path:
    """The same rows and columns as a typed Parquet table (empty cells are nulls), via pyarrow.

    Raises:
        EmotionError: pyarrow is not installed.
    """
    from emotion.io import atomic_path

    table = face_table(class_names).arrow(face_rows(results, class_names))
    import pyarrow.parquet as pq

    with atomic_path(Path(path)) as tmp:
        pq.write_table(table, tmp)
    return Path(path)


def write_tracks_csv(path: str | os.PathLike, summaries: Sequence[Any], class_names: Sequence[str]) -> Path:
    """``<video>_tracks.csv``: a row per track (:func:`~emotion.inference.outputs.table.track_table`), atomically."""
    return _write_csv(path, track_table(class_names), track_rows(summaries, class_names))


def _write_csv(path: str | os.PathLike, table: Table, rows: list[list[Any]]) -> Path:
    from emotion.io import atomic_path

    with atomic_path(Path(path)) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(table.names)
        w.writerows(table.csv_rows(rows))
    return Path(path)
