"""Decode FER2013 once into one compact uint8 ``.npz`` file, rebuilt when the source changes."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

import numpy as np

from emotion.data.sources import RawFER, read_source, source_fingerprint
from emotion.io import atomic_path

__all__ = ["cache_path", "default_cache_dir", "load_or_build"]

log = logging.getLogger(__name__)
CACHE_VERSION = 1  # bump when the decoded representation changes


def default_cache_dir() -> str:
    """``$EMOTION_CACHE_DIR``, else ``~/.cache/emotion`` (also what ``data.cache_dir`` defaults to)."""
    return os.environ.get("EMOTION_CACHE_DIR", "~/.cache/emotion")


def cache_path(source: Path, cache_dir: str | os.PathLike) -> Path:
    """One cache file per source location."""
    key = hashlib.sha1(str(source.resolve()).encode()).hexdigest()[:12]
    return Path(cache_dir).expanduser() / f"fer2013-{source.stem}-{key}.npz"


def load_or_build(source: Path, cache_dir: str | os.PathLike | None) -> RawFER:
    """Return the decoded dataset, from the cache when it matches the source.

    Args:
        source: a CSV file or image-folder root (see :func:`emotion.data.sources.locate_source`).
        cache_dir: where the cache lives; ``None`` disables caching.
    """
    if cache_dir is None:
        return read_source(source)
    fingerprint = f"v{CACHE_VERSION}:{source_fingerprint(source)}"
    path = cache_path(source, cache_dir)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["fingerprint"]) == fingerprint:
                    return RawFER(z["images"], z["labels"], z["splits"], int(z["skipped"]))
            log.info("FER2013 source changed since %s was written; rebuilding it", path)
        except (OSError, ValueError, KeyError, EOFError):
            log.warning("cache %s is unreadable; rebuilding it", path)
    start = time.perf_counter()
    raw = read_source(source)
    log.info("decoded %d faces from %s in %.1f s", len(raw.labels), source, time.perf_counter() - start)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # never a half-written cache
        np.savez(f, images=raw.images, labels=raw.labels, splits=raw.splits,
                 skipped=np.int64(raw.skipped), fingerprint=np.str_(fingerprint))
    return raw
