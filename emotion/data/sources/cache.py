"""Decode FER2013 once into one compact uint8 ``.npz`` file, rebuilt when the source changes."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from emotion.data.sources.fer2013 import RawFER, read_source, source_fingerprint
from emotion.io import atomic_path

__all__ = ["cache_path", "default_cache_dir", "load_or_build"]

log = logging.getLogger(__name__)
CACHE_VERSION = 2  # bump when the decoded representation changes (2: folder sources keep file names)


def default_cache_dir() -> str:
    """``$EMOTION_CACHE_DIR``, else ``~/.cache/emotion`` (also what ``data.cache_dir`` defaults to)."""
    return os.environ.get("EMOTION_CACHE_DIR", "~/.cache/emotion")


def cache_path(source: Path, cache_dir: str | os.PathLike, label_map: Mapping[str, Any] | None = None) -> Path:
    """One cache file per source location (and label map)."""
    where = str(source.resolve()) + (_map_key(label_map) if label_map else "")
    key = hashlib.sha1(where.encode()).hexdigest()[:12]
    return Path(cache_dir).expanduser() / f"fer2013-{source.stem}-{key}.npz"


def _map_key(label_map: Mapping[str, Any]) -> str:
    return json.dumps({str(k).lower(): v for k, v in label_map.items()}, sort_keys=True)


def load_or_build(source: Path, cache_dir: str | os.PathLike | None,
                  label_map: Mapping[str, Any] | None = None) -> RawFER:
    """Return the decoded dataset, from the cache when it matches the source.

    Args:
        source: a CSV file or image-folder root (see :func:`emotion.data.sources.fer2013.locate_source`).
        cache_dir: where the cache lives; ``None`` disables caching.
        label_map: folder names → FER2013 classes (see :func:`emotion.data.sources.fer2013.read_folder`).
    """
    if cache_dir is None:
        return read_source(source, label_map)
    fingerprint = f"v{CACHE_VERSION}:{source_fingerprint(source)}" + (f":{_map_key(label_map)}" if label_map else "")
    path = cache_path(source, cache_dir, label_map)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["fingerprint"]) == fingerprint:
                    skipped_classes = json.loads(str(z["skipped_classes"])) if "skipped_classes" in z else {}
                    names = z["names"] if "names" in z else None
                    return RawFER(z["images"], z["labels"], z["splits"], int(z["skipped"]), skipped_classes, names)
            log.info("FER2013 source changed since %s was written; rebuilding it", path)
        except (OSError, ValueError, KeyError, EOFError):
            log.warning("cache %s is unreadable; rebuilding it", path)
    start = time.perf_counter()
    raw = read_source(source, label_map)
    log.info("decoded %d faces from %s in %.1f s", len(raw.labels), source, time.perf_counter() - start)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # never a half-written cache
        extra = {} if raw.names is None else {"names": raw.names}
        np.savez(f, images=raw.images, labels=raw.labels, splits=raw.splits, skipped=np.int64(raw.skipped),
                 skipped_classes=np.str_(json.dumps(raw.skipped_classes)), fingerprint=np.str_(fingerprint), **extra)
    return raw
