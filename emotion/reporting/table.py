"""The comparison table of runs, as Markdown and as CSV (one row per run, best val acc first)."""

from __future__ import annotations

import csv
import io
import os
from typing import Any, Callable, Sequence

from emotion.io import atomic_path
from emotion.reporting.runs import Run

__all__ = ["COLUMNS", "rows", "sort_runs", "to_markdown", "to_csv", "write_csv"]


def _f1(run: Run, split: str) -> float | None:
    block = run.split(split)
    return None if block is None or "f1_macro" not in block else float(block["f1_macro"])


#: (CSV header, Markdown header, value of a run): the table's columns, in order.
COLUMNS: list[tuple[str, str, Callable[[Run], Any]]] = [
    ("run", "run", lambda r: r.name),
    ("arch", "arch", lambda r: r.metrics.get("arch")),
    ("params", "params", lambda r: r.metrics.get("params")),
    ("epochs", "epochs", lambda r: r.metrics.get("epochs")),
    ("val_acc", "val acc", lambda r: r.acc("val")),
    ("test_acc", "test acc", lambda r: r.acc("test")),
    ("val_f1_macro", "val macro-F1", lambda r: _f1(r, "val")),
    ("test_f1_macro", "test macro-F1", lambda r: _f1(r, "test")),
    ("tta", "tta", lambda r: r.metrics.get("tta")),
    ("wall_time_s", "wall time", lambda r: r.metrics.get("wall_time_s")),
    ("device", "device", lambda r: r.metrics.get("device")),
    ("command", "command", lambda r: r.command),
]


def sort_runs(runs: Sequence[Run]) -> list[Run]:
    """Best val accuracy first; runs without val (test-only evaluations) last, by test accuracy."""
    def key(r: Run) -> tuple[int, float]:
        val, test = r.acc("val"), r.acc("test")
        return (0, -val) if val is not None else (1, -(test or 0.0))
    return sorted(runs, key=key)


def rows(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """One dict per run (in the given order), keyed by the CSV headers; missing values are ``None``."""
    return [{key: get(r) for key, _, get in COLUMNS} for r in runs]


def _cell(key: str, value: Any) -> str:
    """A value as shown in the Markdown table."""
    if value is None:
        return "–"
    if key.endswith("_acc"):
        return f"{value:.2%}"
    if key.endswith("_f1_macro"):
        return f"{value:.3f}"
    if key == "params":
        return f"{value / 1e6:.2f} M" if value >= 1e6 else f"{value / 1e3:.1f} k"
    if key == "wall_time_s":
        return f"{value / 60:.1f} min" if value >= 60 else f"{value:.0f} s"
    text = str(value).replace("|", "\\|")  # a bare pipe would end the cell, even in a code span
    return f"`{text}`" if key == "command" else text


_RIGHT = {"params", "epochs", "val_acc", "test_acc", "val_f1_macro", "test_f1_macro", "wall_time_s"}


def to_markdown(runs: Sequence[Run]) -> str:
    """A GitHub-flavoured Markdown table of ``runs`` (in the given order)."""
    lines = ["| " + " | ".join(h for _, h, _ in COLUMNS) + " |",
             "|" + "|".join("---:" if k in _RIGHT else "---" for k, _, _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(_cell(k, v) for k, v in row.items()) + " |" for row in rows(runs)]
    return "\n".join(lines) + "\n"


def to_csv(runs: Sequence[Run]) -> str:
    """``runs`` as CSV text (full-precision numbers, empty cells for missing values)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=[k for k, _, _ in COLUMNS], lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows(runs))
    return buf.getvalue()


def write_csv(runs: Sequence[Run], path: str | os.PathLike) -> None:
    """Write :func:`to_csv` to ``path``, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(to_csv(runs))
