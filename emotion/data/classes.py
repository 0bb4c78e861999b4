"""FER2013 label set and split names, and how other datasets' class names map onto it."""

from __future__ import annotations

from typing import Any, Mapping

__all__ = ["CLASS_NAMES", "NUM_CLASSES", "SPLITS", "SPLIT_NAMES", "USAGE_TO_SPLIT", "CLASS_ALIASES",
           "NO_COUNTERPART", "class_id", "check_label_map"]

#: FER2013 class ids are the positions in this tuple.
CLASS_NAMES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES: int = len(CLASS_NAMES)

#: Split names in the order of their integer codes in the cache.
SPLITS: tuple[str, ...] = ("train", "val", "test")

#: The original ``Usage`` column (also the Kaggle file-name prefix) mapped to our split names.
USAGE_TO_SPLIT: dict[str, str] = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}

#: How the evaluated splits are called in FER2013 papers.
SPLIT_NAMES: dict[str, str] = {"val": "PublicTest", "test": "PrivateTest"}

#: How other datasets (CK+, JAFFE, RAF-DB, AffectNet, KDEF) name FER2013's classes.
CLASS_ALIASES: dict[str, str] = {
    "anger": "angry", "disgusted": "disgust", "fearful": "fear", "afraid": "fear", "happiness": "happy",
    "sadness": "sad", "surprised": "surprise", "neutrality": "neutral",
}

#: Classes other datasets have and FER2013 has not: skipped (and reported) unless a label map names them.
NO_COUNTERPART: tuple[str, ...] = ("contempt",)


def class_id(name: str, label_map: Mapping[str, Any] | None = None) -> int | None:
    """The FER2013 class id of a folder called ``name``; ``None`` for a class to skip.

    ``label_map`` (folder name → FER2013 class name or id, or ``None`` to skip) comes first, then
    the FER2013 names, ids 0-6 and :data:`CLASS_ALIASES`; :data:`NO_COUNTERPART` classes are skipped.

    Raises:
        KeyError: for a name none of those explain.
    """
    key = name.lower()
    label_map = {str(k).lower(): v for k, v in (label_map or {}).items()}
    if key in label_map:
        target = label_map[key]
        return None if target is None else _fer_id(target)
    if key in CLASS_NAMES or key in CLASS_ALIASES or (key.isdigit() and int(key) < NUM_CLASSES):
        return _fer_id(CLASS_ALIASES.get(key, key))
    if key in NO_COUNTERPART:
        return None
    raise KeyError(name)


def _fer_id(target: Any) -> int:
    if isinstance(target, int) and not isinstance(target, bool) and 0 <= target < NUM_CLASSES:
        return target
    key = str(target).lower()
    if key.isdigit() and int(key) < NUM_CLASSES:
        return int(key)
    return CLASS_NAMES.index(CLASS_ALIASES.get(key, key))  # ValueError: not a class (check_label_map says so)


def check_label_map(label_map: Any) -> str | None:
    """What is wrong with a ``data.label_map`` value, or ``None``."""
    if label_map is None:
        return None
    if not isinstance(label_map, Mapping):
        return "must be a mapping from folder names to FER2013 classes, e.g. {anger: angry, contempt: null}"
    for k, v in label_map.items():
        if v is None:
            continue
        try:
            _fer_id(v)
        except ValueError:
            return (f"maps {k!r} to {v!r}, which is not a FER2013 class: use one of "
                    f"{', '.join(CLASS_NAMES)}, 0-6, or null to skip it")
    return None
