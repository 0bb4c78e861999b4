"""The results files: ``predictions.json`` (with the model and settings that made it), and
``predictions.csv`` or ``predictions.parquet`` (a row per face, the same columns), written
atomically. The CLI, the service and bulk runs share them."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Sequence

from emotion.inference.results import SCHEMA_VERSION

__all__ = ["results_document", "csv_header", "csv_rows", "write_csv", "write_parquet"]


def results_document(describe: dict[str, Any], results: list[dict[str, Any]], errors: list[dict[str, str]],
                     **settings: Any) -> dict[str, Any]:
    """The ``predictions.json`` document: ``describe`` is :meth:`FaceEmotionPredictor.describe`;
    ``settings`` adds run settings (``every`` for videos)."""
    return {"schema_version": SCHEMA_VERSION, "model": describe["model"],
            "settings": {**describe["settings"], **settings}, "results": results, "errors": errors}


def csv_header(class_names: Sequence[str]) -> list[str]:
    """The per-face columns; ``track``, ``detected`` and the ``smooth_*`` columns are filled for videos."""
    return ["path", "frame", "time_s", "width", "height", "face", "track", "detected", "x1", "y1", "x2", "y2",
            "score", "label", *[f"p_{c}" for c in class_names], "smooth_label", *[f"smooth_{c}" for c in class_names]]


def csv_rows(results: list[dict[str, Any]], class_names: Sequence[str]) -> list[list[Any]]:
    """One row per face of each result dict (:meth:`ImageResult.to_dict`); an image without faces
    still gets a row, with the face columns empty."""
    width = len(csv_header(class_names))
    rows = []
    for r in results:
        head = [r["path"], r["frame"], r["time_s"], *r["size"]]
        if not r["faces"]:
            rows.append(head + [""] * (width - len(head)))
        for i, f in enumerate(r["faces"], 1):
            probs = [f["probabilities"].get(c, "") for c in class_names]
            smooth = f.get("smoothed") or {}
            rows.append(head + [i, f.get("track", ""), f.get("detected", ""), *f["box"], f["score"], f["label"], *probs,
                                f.get("smoothed_label", ""), *[smooth.get(c, "") for c in class_names]])
    return rows


def write_csv(path: str | os.PathLike, results: list[dict[str, Any]], class_names: Sequence[str]) -> Path:
    from emotion.io import atomic_path

    with atomic_path(Path(path)) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(csv_header(class_names))
        w.writerows(csv_rows(results, class_names))
    return Path(path)


def write_parquet(path: str | os.PathLike, results: list[dict[str, Any]], class_names: Sequence[str]) -> Path:
    """The CSV's rows and columns as a typed Parquet table (empty cells are nulls), via pyarrow.

    Raises:
        EmotionError: pyarrow is not installed.
    """
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        from emotion.errors import EmotionError

        raise EmotionError("--format parquet needs pyarrow: pip install 'emotion[parquet]' (or pyarrow).") from None
    from emotion.io import atomic_path

    header = csv_header(class_names)
    types = {"path": pa.string(), "frame": pa.int64(), "width": pa.int32(), "height": pa.int32(),
             "face": pa.int32(), "track": pa.int64(), "detected": pa.bool_(), "label": pa.string(),
             "smooth_label": pa.string()}
    columns = list(zip(*csv_rows(results, class_names))) or [()] * len(header)
    table = pa.table({name: pa.array([None if v == "" else v for v in column], types.get(name, pa.float64()))
                      for name, column in zip(header, columns)})
    with atomic_path(Path(path)) as tmp:
        pq.write_table(table, tmp)
    return Path(path)
