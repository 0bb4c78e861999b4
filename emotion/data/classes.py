"""FER2013 label set and split names."""

__all__ = ["CLASS_NAMES", "NUM_CLASSES", "SPLITS", "SPLIT_NAMES", "USAGE_TO_SPLIT"]

#: FER2013 class ids are the positions in this tuple.
CLASS_NAMES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES: int = len(CLASS_NAMES)

#: Split names in the order of their integer codes in the cache.
SPLITS: tuple[str, ...] = ("train", "val", "test")

#: The original ``Usage`` column (also the Kaggle file-name prefix) mapped to our split names.
USAGE_TO_SPLIT: dict[str, str] = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}

#: How the evaluated splits are called in FER2013 papers.
SPLIT_NAMES: dict[str, str] = {"val": "PublicTest", "test": "PrivateTest"}
