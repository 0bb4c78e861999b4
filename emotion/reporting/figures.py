"""The report's figures: learning curves and per-class accuracy of several runs side by side,
and each run's confusion matrix (drawn by :func:`emotion.plots.plot_confusion_matrix`)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from emotion.data.classes import SPLIT_NAMES
from emotion.plots import plot_confusion_matrix, save_figure  # also selects the Agg backend: files only
from emotion.reporting.runs import Run

import matplotlib.pyplot as plt  # noqa: E402  (after emotion.plots chose the backend)

__all__ = ["plot_learning_curves", "plot_per_class_accuracy", "plot_confusion_matrices",
           "MAX_RUNS"]

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
