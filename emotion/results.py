"""The ``metrics.json`` every training and evaluation run writes, derived from confusion matrices."""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["split_metrics"]


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
