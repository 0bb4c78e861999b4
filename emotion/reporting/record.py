"""The ``metrics.json`` record every training and evaluation run writes: its split metrics (from
confusion matrices), what ran, and the command that reproduces it."""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

__all__ = ["split_metrics", "run_record", "command_line"]


def split_metrics(cm: np.ndarray, class_names: Sequence[str]) -> dict:
    """Accuracy, macro-F1, per-class accuracy and the matrix itself (rows: true class)."""
    cm = np.asarray(cm, dtype=np.int64)
    tp = np.diag(cm).astype(np.float64)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = support > 0
    return {
        "n": int(cm.sum()),
        "acc": float(tp.sum() / max(cm.sum(), 1)),
        "f1_macro": float(f1[present].mean()) if present.any() else 0.0,
        "per_class_acc": {name: float(r) for name, r in zip(class_names, recall)},
        "confusion_matrix": cm.tolist(),
    }


def command_line(module: str, args: Sequence[str]) -> str:
    """The shell command that runs ``python -m <module>`` with ``args``."""
    return " ".join(["python -m " + module, *args])


def run_record(splits: dict[str, dict], *, arch: str, params: int, tta: str, checkpoint: Any, started: float,
               device: str, commit: str, command: str, **extra: Any) -> dict[str, Any]:
    """A run's ``metrics.json``: ``splits`` (``val``/``test`` from :func:`split_metrics`), what was
    evaluated and how, the wall time since ``started`` (``time.perf_counter()``), then ``extra``."""
    return {**splits, "arch": arch, "params": int(params), "tta": tta, "checkpoint": checkpoint,
            "wall_time_s": round(time.perf_counter() - started, 2), "device": device, "git_commit": commit,
            "command": command, **extra}
