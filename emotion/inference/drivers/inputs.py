"""What to predict on: files and folders expanded into jobs with unique output names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from emotion.inference.drivers.formats import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from emotion.inference.video.source import is_live_source

__all__ = ["Job", "collect_inputs"]


@dataclass(frozen=True)
class Job:
    """One input: ``kind`` is ``image`` or ``video``; ``name`` is its output file stem. A live
    source (``live``) keeps its ``path`` as typed: a webcam index or a stream URL."""

    path: Path | str
    kind: str
    name: str
    live: bool = False
    title: str | None = None  # what figures call it (default: its path); the service's jobs name their upload


def _live_name(source: str) -> str:
    if source.isdigit():
        return f"camera{source}"
    rest = source.split("://", 1)[1]
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in rest).strip("_")[:80] or "stream"


def collect_inputs(paths: Sequence[str], exclude: Path | None = None) -> tuple[list[Job], list[tuple[str, str]]]:
    """Expand files and folders into jobs, with unique output names.

    Args:
        paths: what the user passed.
        exclude: a folder whose files are skipped (the output folder, so reruns do not read
            their own annotated PNGs).

    Returns:
        The jobs, and ``(path, message)`` for each path that does not exist or holds nothing.
    """
    jobs: list[Job] = []
    errors: list[tuple[str, str]] = []
    used: set[str] = set()
    exclude = exclude.resolve() if exclude is not None else None

    def add(f: Path, rel: Path) -> None:
        kind = "video" if f.suffix.lower() in VIDEO_SUFFIXES else "image"
        base = "__".join(rel.with_suffix("").parts) or f.stem
        name, k = base, 2
        while name in used:
            name, k = f"{base}-{k}", k + 1
        used.add(name)
        jobs.append(Job(f, kind, name))

    for arg in paths:
        p = Path(arg).expanduser()
        if is_live_source(arg) and not p.exists():
            name = _live_name(str(arg))
            used.add(name)
            jobs.append(Job(str(arg), "video", name, live=True))
        elif not p.exists():
            errors.append((arg, f"'{arg}' not found."))
        elif p.is_dir():
            found = sorted(
                f for f in p.rglob("*")
                if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES
                and not any(part.startswith(".") for part in f.relative_to(p).parts)  # hidden, temp files
                and not (exclude is not None and f.resolve().is_relative_to(exclude)))
            if not found:
                errors.append((arg, f"'{arg}' holds no images or videos."))
            for f in found:
                add(f, f.relative_to(p))
        else:
            add(p, Path(p.name))  # any suffix: the image reader says if it is not an image
    return jobs, errors
