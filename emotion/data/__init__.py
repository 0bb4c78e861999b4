"""FER2013 data: readers, cache, preprocessing and the LightningDataModule (no model code here)."""

from emotion.data.classes import CLASS_NAMES, NUM_CLASSES, SPLITS
from emotion.data.datamodule import FaceDataset, FER2013DataModule
from emotion.data.preprocess import to_fer_face, to_model_input

__all__ = ["CLASS_NAMES", "NUM_CLASSES", "SPLITS", "FaceDataset", "FER2013DataModule",
           "to_fer_face", "to_model_input"]
