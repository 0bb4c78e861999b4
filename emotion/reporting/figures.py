"""Figures, written atomically as PNG: a run's confusion matrix and a grid of sample predictions
(beside its metrics.json), and the report's learning curves and per-class accuracy of several
runs side by side."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from emotion.data.classes import SPLIT_NAMES  # noqa: E402
from emotion.io import atomic_path  # noqa: E402
from emotion.reporting.runs import Run  # noqa: E402

__all__ = ["save_figure", "plot_confusion_matrix", "plot_prediction_grid", "plot_learning_curves",
           "plot_per_class_accuracy", "plot_confusion_matrices", "MAX_RUNS"]



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

#: Runs drawn in the shared figures at most (the best by val accuracy), so that they stay legible.
MAX_RUNS = 10


def _series(history: list[dict[str, float]], key: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(r["epoch"], r[key]) for r in history if key in r and "epoch" in r]
    if not pts:
        return np.zeros(0), np.zeros(0)
    x, y = zip(*pts)
    return np.asarray(x, dtype=float), np.asarray(y, dtype=float)


def plot_learning_curves(runs: Sequence[Run], path: str | os.PathLike, title: str = "") -> bool:
    """Train (dashed) and val (solid) loss and accuracy per epoch, one colour per run.

    Returns:
        ``False`` (and writes nothing) when no run has a per-epoch history (evaluation runs only).
    """
    runs = [r for r in runs if r.history]
    if not runs:
        return False
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.6))
    colors = plt.get_cmap("tab10")
    for i, run in enumerate(runs):
        c = colors(i % 10)
        for ax, metric in ((ax_loss, "loss"), (ax_acc, "acc")):
            for split, style in (("train", "--"), ("val", "-")):
                x, y = _series(run.history, f"{split}/{metric}")
                if len(x):
                    # One legend entry per run: the line style, not the legend, tells train from val.
                    ax.plot(x, y, style, color=c, marker="o" if len(x) < 15 else None, markersize=3,
                            label=run.name if split == "val" else "_nolegend_")
    for ax, label in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax_loss.set_title("loss (dashed: train, solid: val)")
    ax_acc.set_title("accuracy (dashed: train, solid: val)")
    handles, labels = ax_acc.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=7,
               bbox_to_anchor=(0.5, -0.02 - 0.035 * ((len(labels) + 3) // 4)))
    if title:
        fig.suptitle(title)
    save_figure(fig, path)
    return True


def plot_per_class_accuracy(runs: Sequence[Run], path: str | os.PathLike, title: str = "") -> None:
    """Grouped bars: per class, one bar per run (on its test split, else val)."""
    classes = list(runs[0].split(runs[0].main_split)["per_class_acc"])
    n = len(runs)
    width = 0.8 / n
    x = np.arange(len(classes))
    fig, ax = plt.subplots(figsize=(max(8.0, 1.1 * len(classes) + 0.25 * n * len(classes) / 2), 4.6))
    colors = plt.get_cmap("tab10")
    for i, run in enumerate(runs):
        split = run.main_split
        per_class = run.split(split)["per_class_acc"]
        values = [float(per_class.get(c, np.nan)) for c in classes]
        ax.bar(x - 0.4 + width * (i + 0.5), values, width, color=colors(i % 10),
               label=f"{run.name} ({split}, acc {run.acc(split):.1%})")
    ax.set_xticks(x, classes)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy (recall)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=min(3, n))
    ax.set_title(title or "per-class accuracy")
    save_figure(fig, path)


def _file_name(run_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", run_name).strip("_") or "run"


def plot_confusion_matrices(runs: Sequence[Run], folder: str | os.PathLike) -> dict[str, Path]:
    """Each run's confusion matrix (test split, else val) as ``folder/<run>.png``.

    Returns:
        Run name → PNG path.
    """
    out: dict[str, Path] = {}
    used: set[str] = set()
    for run in runs:
        split = run.main_split
        block = run.split(split)
        stem = _file_name(run.name)
        if stem in used:  # two names that differ only in characters a file name can't hold
            stem = f"{stem}_{len(used)}"
        used.add(stem)
        path = Path(folder) / f"{stem}.png"
        plot_confusion_matrix(np.asarray(block["confusion_matrix"]), list(block["per_class_acc"]), path,
                              title=f"{run.name}: {run.metrics.get('arch', '?')} {SPLIT_NAMES[split]} "
                                    f"acc {run.acc(split):.2%}")
        out[run.name] = path
    return out
