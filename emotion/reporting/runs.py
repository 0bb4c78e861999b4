"""Read the ``metrics.json`` of finished training and evaluation runs, checking its shape."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from emotion.data.classes import SPLIT_NAMES
from emotion.errors import EmotionError

__all__ = ["Run", "load_run", "load_runs", "EVALUATED_SPLITS"]

#: The evaluated splits a metrics.json may hold: val = PublicTest, test = PrivateTest.
EVALUATED_SPLITS = tuple(SPLIT_NAMES)


@dataclass(frozen=True)
class Run:
    """One run folder and its ``metrics.json``.

    Attributes:
        name: a short unique label (the folder relative to the runs' common parent).
        path: the run folder.
        metrics: the parsed ``metrics.json``.
        command: the command that reproduces this run (for a multirun job: the job's own).
    """

    name: str
    path: Path
    metrics: dict[str, Any]
    command: str | None = None

    def split(self, name: str) -> dict[str, Any] | None:
        """The ``val`` or ``test`` block, or ``None`` if the run did not evaluate that split."""
        block = self.metrics.get(name)
        return block if isinstance(block, dict) else None

    def acc(self, split: str) -> float | None:
        """Accuracy on ``split``, or ``None``."""
        block = self.split(split)
        return None if block is None else float(block["acc"])

    @property
    def main_split(self) -> str:
        """The split the report shows per-class results for: test (PrivateTest) if present, else val."""
        return "test" if self.split("test") is not None else "val"

    @property
    def history(self) -> list[dict[str, float]]:
        """Per-epoch metrics (training runs only; empty for evaluation runs)."""
        rows = self.metrics.get("history")
        return rows if isinstance(rows, list) else []


def _check(metrics: Any, path: Path) -> dict[str, Any]:
    """Raise :class:`EmotionError` unless ``metrics`` looks like emotion.train/evaluate output."""
    what = f"'{path}' is not a metrics.json written by emotion.train or emotion.evaluate"
    if not isinstance(metrics, dict):
        raise EmotionError(f"{what}: it holds a {type(metrics).__name__}, not an object.")
    splits = [s for s in EVALUATED_SPLITS if s in metrics]
    if not splits:
        raise EmotionError(f"{what}: it has neither a 'val' nor a 'test' block.")
    for s in splits:
        block = metrics[s]
        if not isinstance(block, dict) or not {"acc", "per_class_acc", "confusion_matrix"} <= set(block):
            raise EmotionError(f"{what}: its '{s}' block lacks acc, per_class_acc or confusion_matrix.")
        if not isinstance(block["acc"], (int, float)) or not isinstance(block["per_class_acc"], dict):
            raise EmotionError(f"{what}: '{s}.acc' must be a number and '{s}.per_class_acc' an object.")
    return metrics


def _read(folder: Path) -> dict[str, Any]:
    path = folder / "metrics.json"
    if not folder.is_dir():
        raise EmotionError(f"run folder '{folder}' not found. Pass folders such as outputs/train/runs/<time>.")
    if not path.is_file():
        raise EmotionError(f"'{folder}' has no metrics.json: the run is unfinished, failed, or not a run folder "
                           "(a multirun's jobs are its numbered sub-folders).")
    try:
        return _check(json.loads(path.read_text()), path)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EmotionError(f"'{path}' is not valid JSON ({e}).") from None


def load_run(folder: str | os.PathLike, name: str | None = None) -> Run:
    """Read one run folder.

    Raises:
        EmotionError: the folder or its metrics.json is missing, or the file is malformed.
    """
    folder = Path(folder)
    metrics = _read(folder)
    return Run(name=name or folder.resolve().name, path=folder, metrics=metrics,
               command=metrics.get("command"))


def _names(folders: list[Path]) -> list[str]:
    """Each folder relative to the folders' common parent: short, and unique for distinct folders."""
    resolved = [f.resolve() for f in folders]
    if len(resolved) == 1:
        return [resolved[0].name]
    common = Path(os.path.commonpath(resolved))
    return [str(r.relative_to(common)) for r in resolved]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def load_runs(folders: Iterable[str | os.PathLike], skip_invalid: bool = False,
              warn: Callable[[str], None] = _stderr) -> list[Run]:
    """Read several run folders (duplicates dropped).

    Args:
        folders: run folders, each holding a ``metrics.json``.
        skip_invalid: skip a folder without a valid metrics.json, calling ``warn`` with the reason,
            instead of raising.
        warn: where skip messages go (default: stderr).

    Raises:
        EmotionError: a folder is invalid (unless ``skip_invalid``), or no valid run is left.
    """
    unique: dict[Path, Path] = {}
    for f in map(Path, folders):
        unique.setdefault(f.resolve(), f)
    good: list[tuple[Path, dict[str, Any]]] = []
    for folder in unique.values():
        try:
            good.append((folder, _read(folder)))
        except EmotionError as e:
            if not skip_invalid:
                raise
            warn(f"warning: skipped: {e}")
    if not good:
        raise EmotionError("no run with a metrics.json to report on. Train one first "
                           "(make train-sample, or python -m emotion.train …) and pass its folder.")
    names = _names([f for f, _ in good])
    return [Run(name=n, path=f, metrics=m, command=m.get("command"))
            for n, (f, m) in zip(names, good)]
