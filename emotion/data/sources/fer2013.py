"""Readers for the forms FER2013 circulates in, each returning the same :class:`RawFER`.

* the original challenge file ``fer2013.csv`` (``emotion,pixels,Usage``), torchvision's
  ``icml_face_data.csv`` (same columns, padded names) and ``train.csv`` (no ``Usage``);
* the Kaggle image-folder tree ``train|test/<class>/*.jpg`` whose file-name prefixes
  (``Training_``, ``PublicTest_``, ``PrivateTest_``) carry the original split;
* any folder of class sub-folders ``<class>/*`` (another dataset's faces, of any size and mode):
  a test set. Class names go through :func:`emotion.data.classes.class_id` and a label map.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from PIL import Image, UnidentifiedImageError

from emotion.data.classes import CLASS_ALIASES, CLASS_NAMES, SPLITS, USAGE_TO_SPLIT, class_id
from emotion.data.preprocess import DECODE_ERRORS, FER_SIZE, IMAGE_SUFFIXES, MAX_SIDE, to_fer_face, upright
from emotion.errors import EmotionError

__all__ = ["RawFER", "locate_source", "source_fingerprint", "read_source", "is_test_set_folder",
           "MISSING_DATA_HELP"]

log = logging.getLogger(__name__)

CSV_NAMES = ("fer2013.csv", "icml_face_data.csv", "train.csv")
FOLDER_SPLITS = {"train": "train", "training": "train", "val": "val", "valid": "val",
                 "validation": "val", "test": "test"}
MISSING_DATA_HELP = (
    "FER2013 is on Kaggle (https://www.kaggle.com/datasets/msambare/fer2013 for the image folders, "
    "or the challenge file fer2013.csv from "
    "https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge). "
    "Download it, then point at it with data.root=/path/to/fer2013 (a folder with train/ and test/, "
    "or a fer2013.csv) or set FER2013_DIR."
)


@dataclass
class RawFER:
    """A decoded dataset: parallel arrays, one row per face."""

    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) uint8 class ids
    splits: np.ndarray  # (N,) uint8 indices into SPLITS
    skipped: int = 0  # unreadable images left out
    #: images left out per class folder with no FER2013 counterpart (e.g. CK+'s contempt)
    skipped_classes: dict[str, int] = field(default_factory=dict)
    #: each face's path relative to the root (folder sources; ``None`` for a CSV, whose faces are in row order)
    names: np.ndarray | None = None


def locate_source(root: str | os.PathLike) -> Path:
    """Find the data under ``root``: a CSV file, a split tree, or a folder of class sub-folders.

    Raises:
        EmotionError: if nothing usable is there.
    """
    path = Path(root).expanduser()
    if not path.exists():
        raise EmotionError(f"FER2013 not found at '{path}'. {MISSING_DATA_HELP}")
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise EmotionError(f"data.root '{path}' is a file but not a CSV. {MISSING_DATA_HELP}")
        return path
    if (path / "train").is_dir():
        return path
    for name in CSV_NAMES:
        if (path / name).is_file():
            return path / name
    if any(p.is_dir() for p in path.iterdir()):
        return path  # split folders without train/, or class folders: read_folder tells which
    raise EmotionError(
        f"'{path}' holds neither a train/ folder, class sub-folders, nor one of {', '.join(CSV_NAMES)}. "
        f"{MISSING_DATA_HELP}"
    )


def source_fingerprint(source: Path) -> str:
    """A cheap hash that changes whenever the source's files change (names, sizes, mtimes)."""
    h = hashlib.sha1()
    if source.is_file():
        st = source.stat()
        h.update(f"{source.name}|{st.st_size}|{st.st_mtime_ns}".encode())
        return h.hexdigest()
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames.sort()
        for name in sorted(filenames):
            st = os.stat(os.path.join(dirpath, name))
            rel = os.path.relpath(os.path.join(dirpath, name), source)
            h.update(f"{rel}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def read_source(source: Path, label_map: Mapping[str, Any] | None = None) -> RawFER:
    """Decode a source found by :func:`locate_source` (``label_map``: see :func:`read_folder`)."""
    return read_csv(source) if source.is_file() else read_folder(source, label_map)


# ---------------------------------------------------------------- folder tree

def _class_id(folder: Path, label_map: Mapping[str, Any] | None) -> int | None:
    try:
        return class_id(folder.name, label_map)
    except KeyError:
        aliases = ", ".join(f"{a}→{c}" for a, c in CLASS_ALIASES.items())
        raise EmotionError(
            f"unknown class folder '{folder}': expected one of {', '.join(CLASS_NAMES)} (or 0-6), or an alias "
            f"({aliases}). Name it in a label map, e.g. 'data.label_map={{{folder.name}: neutral}}', "
            f"or 'data.label_map={{{folder.name}: null}}' to skip it."
        ) from None


def _split_of(file_name: str, folder_split: str) -> str:
    prefix = file_name.split("_", 1)[0]
    return USAGE_TO_SPLIT.get(prefix, folder_split)


def _decode(path: str) -> np.ndarray | None:
    try:
        with Image.open(path) as im:
            if max(im.size) > MAX_SIDE:  # a bomb: skip it undecoded
                return None
            im.load()
            return to_fer_face(upright(im))  # the predictor's reader turns photos by EXIF too
    except (UnidentifiedImageError, Image.DecompressionBombError, *DECODE_ERRORS):
        return None


def _images_in(folder: Path) -> list[str]:
    return sorted(f for f in os.listdir(folder) if Path(f).suffix.lower() in IMAGE_SUFFIXES)


def _split_trees(root: Path) -> list[tuple[Path, str]]:
    """``root``'s split folders (``train``, ``test``, …) with their split; unrelated folders (a cache)
    are ignored."""
    return [(p, FOLDER_SPLITS[p.name.lower()]) for p in sorted(root.iterdir())
            if p.is_dir() and p.name.lower() in FOLDER_SPLITS]


def is_test_set_folder(source: Path) -> bool:
    """Whether ``source`` is a folder of class sub-folders (read as one test set), not a split tree."""
    return source.is_dir() and not _split_trees(source)


def read_folder(root: Path, label_map: Mapping[str, Any] | None = None) -> RawFER:
    """Read ``root/{train,val,test}/<class>/*``, or ``root/<class>/*`` as a test set.

    File-name prefixes (``PublicTest_`` …) override the folder's split. Images of any size and mode
    become 48×48 grey faces (:func:`~emotion.data.preprocess.to_fer_face`). ``label_map`` maps
    folder names to FER2013 classes (``None``: skip the folder); a class with no FER2013
    counterpart that it does not name is skipped and counted in ``skipped_classes``.
    """
    files: list[str] = []
    labels: list[int] = []
    splits: list[int] = []
    skipped_classes: dict[str, int] = {}
    # With no split folder at all, root is one test set of class folders (is_test_set_folder).
    for split_dir, folder_split in _split_trees(root) or [(root, "test")]:
        class_dirs = sorted(p for p in split_dir.iterdir() if p.is_dir())
        if not class_dirs:
            raise EmotionError(f"'{split_dir}' has no class folders; expected {split_dir}/<class>/*.jpg.")
        for class_dir in class_dirs:
            cid = _class_id(class_dir, label_map)
            names = _images_in(class_dir)
            if cid is None:
                skipped_classes[class_dir.name] = skipped_classes.get(class_dir.name, 0) + len(names)
                continue
            if not names:
                raise EmotionError(
                    f"class folder '{class_dir}' holds no images. Add its images or remove the folder."
                )
            for name in names:
                files.append(os.path.join(class_dir, name))
                labels.append(cid)
                splits.append(SPLITS.index(_split_of(name, folder_split)))
    if skipped_classes:
        log.warning("skipped class folders with no FER2013 counterpart under '%s': %s (name them in "
                    "data.label_map to keep them)", root, skipped_classes)
    # PIL releases the GIL while decoding, so threads give a real speed-up here.
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        decoded = list(pool.map(_decode, files, chunksize=256))
    bad = [f for f, img in zip(files, decoded) if img is None]
    if bad:
        warnings.warn(
            f"skipped {len(bad)} unreadable image(s) under '{root}', e.g. '{bad[0]}'", stacklevel=2
        )
    keep = [i for i, img in enumerate(decoded) if img is not None]
    if not keep:
        raise EmotionError(f"no readable images under '{root}'. {MISSING_DATA_HELP}")
    images = np.stack([decoded[i] for i in keep])
    return RawFER(
        images=images,
        labels=np.asarray(labels, dtype=np.uint8)[keep],
        splits=np.asarray(splits, dtype=np.uint8)[keep],
        skipped=len(bad),
        skipped_classes=skipped_classes,
        names=np.array([os.path.relpath(files[i], root).replace(os.sep, "/") for i in keep], dtype=np.str_),
    )


# ---------------------------------------------------------------- CSV

def read_csv(path: Path) -> RawFER:
    """Read a FER2013 CSV: ``emotion`` and ``pixels`` columns, ``Usage`` optional."""
    n_pixels = FER_SIZE * FER_SIZE
    images: list[np.ndarray] = []
    labels: list[int] = []
    splits: list[int] = []
    try:
        # utf-8-sig: a CSV saved by Excel starts with a byte-order mark, glued to the first name.
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = [h.strip().lower() for h in next(reader, [])]
            if "pixels" not in header:
                raise EmotionError(
                    f"'{path}' has no 'pixels' column (found: {str(header)[:200]}); not a FER2013 CSV.")
            if "emotion" not in header:
                raise EmotionError(
                    f"'{path}' has no 'emotion' column, so it has no labels (torchvision's test.csv is "
                    "unlabelled); use fer2013.csv, icml_face_data.csv or train.csv."
                )
            i_pix, i_emo = header.index("pixels"), header.index("emotion")
            i_use = header.index("usage") if "usage" in header else None
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                where = f"'{path}', line {line}"
                if len(row) <= max(i_pix, i_emo, -1 if i_use is None else i_use):
                    raise EmotionError(f"{where}: {len(row)} field(s), expected {len(header)} "
                                       f"({', '.join(header)[:200]}). Fix or delete that row.")
                try:
                    pixels = np.array(row[i_pix].split(), dtype=np.int64)
                    label = int(row[i_emo])
                except (ValueError, OverflowError):  # OverflowError: a "pixel" beyond int64
                    raise EmotionError(
                        f"{where}: malformed row (emotion must be an integer, pixels integers).") from None
                if pixels.size != n_pixels:
                    raise EmotionError(
                        f"{where}: 'pixels' has {pixels.size} values, expected {n_pixels} (48×48). "
                        "Fix or delete that row."
                    )
                if not 0 <= label < len(CLASS_NAMES) or pixels.min() < 0 or pixels.max() > 255:
                    raise EmotionError(f"{where}: emotion must be 0-6 and pixels 0-255.")
                split = "train"
                if i_use is not None:
                    usage = row[i_use].strip()
                    if usage not in USAGE_TO_SPLIT:
                        raise EmotionError(
                            f"{where}: Usage {usage[:40]!r} is not one of {', '.join(USAGE_TO_SPLIT)}."
                        )
                    split = USAGE_TO_SPLIT[usage]
                images.append(pixels.astype(np.uint8).reshape(FER_SIZE, FER_SIZE))
                labels.append(label)
                splits.append(SPLITS.index(split))
    except UnicodeDecodeError:
        raise EmotionError(f"'{path}' is not a text CSV file.") from None
    except csv.Error as e:  # e.g. a field over csv's 128 KiB limit (a FER2013 row is ~9 KiB)
        raise EmotionError(f"'{path}', line {reader.line_num}: not a FER2013 CSV ({e}).") from None
    except OSError as e:
        raise EmotionError(f"'{path}' cannot be read ({e.strerror or e}).") from None
    if not images:
        raise EmotionError(f"'{path}' has a header but no rows.")
    return RawFER(np.stack(images), np.asarray(labels, np.uint8), np.asarray(splits, np.uint8))
