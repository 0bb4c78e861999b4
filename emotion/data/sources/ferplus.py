"""FER+ (Barsoum et al., ICMI 2016): ten crowd votes for every FER2013 face, joined to our faces.

Microsoft's ``fer2013new.csv`` holds one row per row of the original ``fer2013.csv``, in the same
order, with vote counts (summing to 10) over neutral, happiness, surprise, sadness, anger, disgust,
fear, contempt, unknown and NF (not a face). A face read from ``fer2013.csv`` finds its votes by its
row; a face read from the Kaggle folders (whose file names carry other ids) through the row index
shipped in ``emotion/assets/ferplus/`` (its README says how it was made).

Here the votes are reordered to our class ids: the seven FER2013 classes (0-6), contempt (7),
unknown (8) and NF (9). Three label spaces are built from them:

* :func:`majority_labels`, :func:`vote_distributions`: Barsoum et al.'s FER+ protocol, 8 classes,
  faces without a valid label dropped (``data=ferplus``);
* :func:`fer2013_soft_labels`: the votes as soft targets for the 7-class FER2013 task, with the
  FER2013 label wherever a face has no usable votes (``data.soft_labels=ferplus``);
* :func:`plurality_labels`: what most annotators said, over the 7 classes, for judging a FER2013
  model against people (:mod:`emotion.evaluation.ferplus`).
"""

from __future__ import annotations

import csv
import gzip
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from emotion.data.classes import CLASS_NAMES
from emotion.errors import EmotionError
from emotion.resources import ASSETS_DIR

__all__ = ["FERPLUS_CLASS_NAMES", "VOTE_COLUMNS", "locate_votes", "read_votes", "rows_of", "votes_of",
           "majority_labels", "vote_distributions", "fer2013_soft_labels", "plurality_labels",
           "FERPLUS_HELP"]

#: The FER+ protocol's 8 classes: FER2013's 7 (same ids) and contempt.
FERPLUS_CLASS_NAMES: tuple[str, ...] = (*CLASS_NAMES, "contempt")
#: Our order of the vote columns: the 8 classes, then unknown and NF.
VOTE_COLUMNS: tuple[str, ...] = (*FERPLUS_CLASS_NAMES, "unknown", "NF")
#: fer2013new.csv's header names for VOTE_COLUMNS, in that order.
_CSV_COLUMNS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral", "contempt",
                "unknown", "NF")
UNKNOWN, NOT_A_FACE = 8, 9
#: FER+'s own column order, as indices into VOTE_COLUMNS
_FERPLUS_ORDER = [6, 3, 5, 4, 0, 1, 2, 7, 8, 9]
FER2013_ROWS = 35887
_ASSETS = ASSETS_DIR / "ferplus"
INDEX_FILE = _ASSETS / "kaggle_rows.csv.gz"
#: Microsoft's fer2013new.csv as released (MIT, LICENSE.md beside it), gzipped: 182 KB.
SHIPPED_VOTES = _ASSETS / "fer2013new.csv.gz"
FERPLUS_HELP = ("FER+ is fer2013new.csv from https://github.com/microsoft/FERPlus (MIT; a copy ships in "
                "emotion/assets/ferplus/): point data.ferplus at it or at its folder.")


def locate_votes(path: str | os.PathLike) -> Path:
    """``fer2013new.csv`` (or ``.csv.gz``) itself, or the folder that holds it.

    Raises:
        EmotionError: nothing there.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        p = next((p / n for n in ("fer2013new.csv", "fer2013new.csv.gz") if (p / n).is_file()), p / "fer2013new.csv")
    if not p.is_file():
        raise EmotionError(f"data.ferplus={str(path)!r}: no fer2013new.csv there. {FERPLUS_HELP}")
    return p


@lru_cache(maxsize=4)
def _read_votes(path: Path, mtime_ns: int) -> tuple[np.ndarray, np.ndarray]:
    votes = np.zeros((FER2013_ROWS, len(VOTE_COLUMNS)), dtype=np.uint8)
    named = np.zeros(FER2013_ROWS, dtype=bool)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            missing = [c for c in (*_CSV_COLUMNS, "Image name") if c not in header]
            if missing:
                raise EmotionError(f"'{path}' is not FER+'s fer2013new.csv: no column(s) {', '.join(missing)}. "
                                   f"{FERPLUS_HELP}")
            cols = [header.index(c) for c in _CSV_COLUMNS]
            i_name = header.index("Image name")
            n = 0
            for n, row in enumerate(reader):
                if n >= FER2013_ROWS:
                    raise EmotionError(f"'{path}' has more than {FER2013_ROWS} rows: not FER+'s fer2013new.csv.")
                votes[n] = [int(row[c]) for c in cols]
                named[n] = bool(row[i_name].strip())
    except (ValueError, IndexError) as e:
        raise EmotionError(f"'{path}', row {n + 2}: not a FER+ vote row ({e}). {FERPLUS_HELP}") from None
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise EmotionError(f"'{path}' cannot be read ({e}).") from None
    if n + 1 != FER2013_ROWS:
        raise EmotionError(f"'{path}' has {n + 1} rows, FER+ has {FER2013_ROWS}: a truncated download?")
    return votes, named


def read_votes(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """The votes of every ``fer2013.csv`` row, ``(35887, 10)`` uint8 in :data:`VOTE_COLUMNS` order, and
    whether FER+ kept the row (173 rows have no image name and no votes)."""
    p = locate_votes(path)
    return _read_votes(p, p.stat().st_mtime_ns)


@lru_cache(maxsize=1)
def _kaggle_index() -> dict[str, int]:
    with gzip.open(INDEX_FILE, "rt", newline="") as f:
        return {r["file"]: int(r["fer_row"]) for r in csv.DictReader(f)}


def rows_of(names: np.ndarray | None, n_faces: int) -> np.ndarray:
    """Each face's ``fer2013.csv`` row, or -1 where it has none.

    ``names`` are the faces' paths relative to the data root (Kaggle folders), or ``None`` for faces read
    from ``fer2013.csv`` in its row order (all 35,887 rows: a cut-down CSV has no known rows).
    """
    if names is None:
        if n_faces != FER2013_ROWS:
            raise EmotionError(f"FER+ votes join fer2013.csv by row, and this CSV has {n_faces} rows, not "
                               f"{FER2013_ROWS}: use the full fer2013.csv or the Kaggle folders.")
        return np.arange(n_faces)
    index = _kaggle_index()
    rows = np.array([index.get(str(n).replace(os.sep, "/"), -1) for n in names], dtype=np.int64)
    if len(rows) and (rows < 0).mean() > 0.5:
        raise EmotionError(f"only {(rows >= 0).sum()} of {len(rows)} faces are in FER+'s index of the Kaggle "
                           "FER2013 folders: FER+ votes need FER2013 itself (its Kaggle folders or fer2013.csv).")
    return rows


def votes_of(rows: np.ndarray, votes_path: str | os.PathLike) -> np.ndarray:
    """The votes of faces at ``rows`` (from :func:`rows_of`); all zero where a face has none."""
    votes, named = read_votes(votes_path)
    out = np.zeros((len(rows), len(VOTE_COLUMNS)), dtype=np.uint8)
    ok = rows >= 0
    out[ok] = votes[rows[ok]] * named[rows[ok], None]
    return out


def _drop_single_votes(votes: np.ndarray) -> np.ndarray:
    """Barsoum et al.'s outlier removal: an emotion with one vote counts as none."""
    v = votes.astype(np.float64)
    v[v <= 1] = 0
    return v


def majority_labels(votes: np.ndarray) -> np.ndarray:
    """FER+'s majority label (0-7), or -1: after dropping single votes, the emotion with more than half
    of the rest, unless that is unknown or NF (Barsoum et al.'s ``majority`` mode, also its test labels)."""
    v = _drop_single_votes(votes)
    total, top = v.sum(1), v.argmax(1)
    ok = (v.max(1) > 0.5 * total) & (total > 0) & (top < UNKNOWN)
    return np.where(ok, top, -1)


def vote_distributions(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Barsoum et al.'s ``crossentropy`` targets: ``(N, 8)`` distributions and whether each face keeps one.

    After dropping single votes, the most-voted emotions are taken in turn (ties together) until they
    hold 75 % of the votes, at most three; a face keeps its distribution over those when they hold more
    than half of the votes and unknown/NF is not among the leaders (ported from FER+'s ``ferplus.py``).
    """
    v = _drop_single_votes(votes)
    n = len(v)
    out = np.zeros((n, len(FERPLUS_CLASS_NAMES)))
    keep = np.zeros(n, dtype=bool)
    for k in range(n):
        raw, total = v[k].copy(), v[k].sum()
        if total == 0:
            continue
        taken = np.zeros(len(raw))
        part, count, valid = 0.0, 0, True
        while part < 0.75 * total and count < 3 and valid:
            top = raw.max()
            for i in range(len(raw)):
                if raw[i] == top:
                    taken[i], raw[i] = top, 0
                    part += top
                    count += 1
                    if i >= UNKNOWN:
                        valid = False
                        if taken.sum() > top:  # other emotions led before unknown/NF: drop just it
                            taken[i] = 0
                            count -= 1
                        break
        if taken.sum() <= 0.5 * total or count > 3 or taken.argmax() >= UNKNOWN:
            continue
        out[k] = taken[:UNKNOWN] / taken[:UNKNOWN].sum()
        keep[k] = True
    return out.astype(np.float32), keep


def fer2013_soft_labels(votes: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Soft targets for the 7-class FER2013 task: each face's votes over the 7 classes, or its FER2013
    label (one-hot) where it has none of those (no FER+ row, or only contempt/unknown/NF votes).

    Returns:
        ``(N, 7)`` float32 rows summing to 1, and whether each row came from votes.
    """
    v = votes[:, :len(CLASS_NAMES)].astype(np.float32)
    total = v.sum(1)
    has = total > 0
    out = np.eye(len(CLASS_NAMES), dtype=np.float32)[np.asarray(labels, dtype=np.int64)]
    out[has] = v[has] / total[has, None]
    return out, has


def plurality_labels(votes: np.ndarray) -> np.ndarray:
    """What most annotators said, over the 7 FER2013 classes: the most-voted of FER+'s ten columns, a tie
    going to the column FER+ lists first (neutral, happiness, surprise, sadness, anger, disgust, fear,
    contempt, unknown, NF), when that is one of the 7 classes; else -1 (no votes, contempt, unknown, NF)."""
    theirs = votes[:, _FERPLUS_ORDER]
    top = np.asarray(_FERPLUS_ORDER)[theirs.argmax(1)]
    ok = (votes.sum(1) > 0) & (top < len(CLASS_NAMES))
    return np.where(ok, top, -1)
