"""``<video>_timeline.png``: each track's emotions over time, one row per track, with the track's face."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from emotion.inference.outputs.annotate import class_color
from emotion.inference.video.summaries import TrackLog

__all__ = ["plot_timeline", "MAX_TIMELINE_TRACKS"]

#: Rows beyond this many would be unreadable; the longest-seen tracks are shown, and the title says so.
MAX_TIMELINE_TRACKS = 16


def plot_timeline(log: TrackLog, path: str | os.PathLike, title: str = "", duration_s: float | None = None) -> Path:
    """Draw ``log``'s tracks: per row the track's 48×48 face, then its smoothed probabilities over
    time as stacked bands (one colour per class), written atomically as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from emotion.io import atomic_path

    summaries = sorted(log.summaries(), key=lambda s: -s.frames)[:MAX_TIMELINE_TRACKS]
    summaries.sort(key=lambda s: (s.first_s, s.track))
    rows = max(1, len(summaries))
    end = duration_s or max((s.last_s for s in summaries), default=1.0) or 1.0
    fig = plt.figure(figsize=(11, 0.95 * rows + 1.3), dpi=100)
    grid = fig.add_gridspec(rows, 2, width_ratios=(1, 14), hspace=0.35, wspace=0.03,
                            left=0.02, right=0.86, top=1 - 0.55 / (0.95 * rows + 1.3), bottom=0.6 / (0.95 * rows + 1.3))
    colors = [np.array(class_color(c)) / 255 for c in log.class_names]
    for row, s in enumerate(summaries):
        thumb_ax, ax = fig.add_subplot(grid[row, 0]), fig.add_subplot(grid[row, 1])
        thumb = log.thumbnail(s.track)
        if thumb is not None:
            thumb_ax.imshow(thumb, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        thumb_ax.set_xticks([]), thumb_ax.set_yticks([])
        thumb_ax.set_ylabel(f"#{s.track}", rotation=0, ha="right", va="center", fontsize=10)
        times, probs = log.series(s.track)
        # A gap longer than a second is left blank rather than bridged by the band.
        breaks = np.flatnonzero(np.diff(times) > 1.0) + 1
        for t, p in zip(np.split(times, breaks), np.split(probs, breaks)):
            if len(t) == 1:
                t, p = np.array([t[0], t[0] + 1e-3]), np.repeat(p, 2, axis=0)
            ax.stackplot(t, p.T, colors=colors, linewidth=0)
        ax.set_xlim(0, end)
        ax.set_ylim(0, 1)
        ax.set_yticks([])
        ax.text(1.005, 0.5, f"{s.dominant}\n{s.first_s:.1f}-{s.last_s:.1f} s", transform=ax.transAxes,
                va="center", fontsize=8)
        if row < rows - 1:
            ax.set_xticklabels([])
        else:
            ax.set_xlabel("time (s)")
    if not summaries:
        ax = fig.add_subplot(grid[0, 1])
        ax.text(0.5, 0.5, "no face tracks", ha="center", va="center")
        ax.set_axis_off()
    handles = [matplotlib.patches.Patch(color=c, label=n) for n, c in zip(log.class_names, colors)]
    fig.legend(handles=handles, loc="upper right", fontsize=8, frameon=False, bbox_to_anchor=(1.0, 1.0))
    shown = f" (the {len(summaries)} longest of {len(log)})" if len(log) > len(summaries) else ""
    fig.suptitle(f"{title}: {len(log)} track{'s' if len(log) != 1 else ''}{shown}", x=0.02, ha="left", fontsize=11)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
