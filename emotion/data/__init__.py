"""FER2013 data: where faces come from (`sources/`: readers, FER+ votes, cache), preprocessing, and the
LightningDataModule (no model code here).

The datamodule (and with it Lightning) is imported only when asked for, so that inference, which
needs the class names and the preprocessing alone, does not pull in Lightning.
"""

from emotion.data.classes import CLASS_NAMES, NUM_CLASSES, SPLITS
from emotion.data.preprocess import to_fer_face, to_model_input

__all__ = ["CLASS_NAMES", "NUM_CLASSES", "SPLITS", "FaceDataset", "FER2013DataModule", "FERPlusDataModule",
           "to_fer_face", "to_model_input"]


def __getattr__(name: str):
    if name in ("FaceDataset", "FER2013DataModule", "FERPlusDataModule"):
        from emotion.data import datamodule

        return getattr(datamodule, name)
    raise AttributeError(name)
