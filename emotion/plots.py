"""Figures written beside a run's metrics: the confusion matrix and a grid of sample predictions."""

from __future__ import annotations

import os
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from emotion.io import atomic_path  # noqa: E402

__all__ = ["save_figure", "plot_confusion_matrix", "plot_prediction_grid"]


def save_figure(fig, path: str | os.PathLike) -> None:
    """Write a matplotlib figure as PNG, atomically, and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_confusion_matrix(cm: np.ndarray, class_names: Sequence[str], path: str | os.PathLike,
                          title: str = "") -> None:
    """Row-normalised confusion matrix (rows: true class), with counts, as a PNG."""
    cm = np.asarray(cm, dtype=np.int64)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{norm[i, j]:.2f}\n{cm[i, j]}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title or f"accuracy {np.trace(cm) / max(cm.sum(), 1):.2%}")
    save_figure(fig, path)


def plot_prediction_grid(images: np.ndarray, labels: np.ndarray, probs: np.ndarray,
                         class_names: Sequence[str], path: str | os.PathLike, cols: int = 8) -> None:
    """48×48 faces with true and predicted labels (green if right, red if wrong)."""
    n = len(images)
    rows = max(1, (n + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.55))
    for k, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.axis("off")
        if k >= n:
            continue
        pred = int(probs[k].argmax())
        ax.imshow(images[k], cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{class_names[pred]} {probs[k, pred]:.0%}\n(true {class_names[int(labels[k])]})",
                     fontsize=6.5, color="green" if pred == labels[k] else "red")
    save_figure(fig, path)
