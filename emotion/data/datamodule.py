"""The FER2013 LightningDataModule: splits, augmentation, balancing, loaders."""

from __future__ import annotations

import functools
import logging
import os
import random
from typing import Any, Callable, Mapping

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset, Sampler

import emotion.data.sources.ferplus as fp
from emotion.data.classes import CLASS_NAMES, SPLITS
from emotion.data.preprocess import FER_SIZE, to_model_input
from emotion.data.sampler import EpochSampler
from emotion.data.soft_labels import load_soft_labels
from emotion.data.sources.cache import load_or_build
from emotion.data.sources.fer2013 import RawFER, locate_source
from emotion.data.workers import worker_init
from emotion.errors import EmotionError

__all__ = ["FaceDataset", "FER2013DataModule", "FERPlusDataModule", "stratified_split"]

log = logging.getLogger(__name__)
BALANCE_MODES = ("none", "sampler", "loss")


class FaceDataset(Dataset):
    """uint8 faces in memory → (normalised tensor, label), with an optional albumentations transform.

    Items are fetched by index, or by ``(index, seed)`` from :class:`EpochSampler`: the transform
    then draws from that seed, so augmentation does not depend on which worker runs it. With
    ``soft_labels`` (a teacher's probabilities, one row per face) items are ``(x, label, probs)``.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, image_size: int = FER_SIZE,
                 transform: Callable | None = None, soft_labels: np.ndarray | None = None) -> None:
        self.images = images
        self.labels = torch.as_tensor(labels.astype(np.int64))
        self.image_size = image_size
        self.transform = transform
        self.soft_labels = None if soft_labels is None else torch.as_tensor(soft_labels, dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        i, seed = key if isinstance(key, tuple) else (key, None)
        img = self.images[i]
        if self.transform is not None:
            if seed is not None and hasattr(self.transform, "set_random_state"):
                # One shared stream for the whole pipeline (albumentations' set_random_seed would
                # give every transform the same seed, so their coin flips would agree).
                self.transform.set_random_state(np.random.default_rng(seed), random.Random(seed))
            img = self.transform(image=img)["image"]
        x = to_model_input(img, self.image_size)[0]
        if self.soft_labels is not None:
            return x, self.labels[i], self.soft_labels[i]
        return x, self.labels[i]


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask choosing ``fraction`` of each class (at least one per class), reproducibly."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n = max(1, int(round(fraction * len(idx)))) if len(idx) > 1 else 0
        mask[rng.choice(idx, size=n, replace=False)] = True
    return mask


class FER2013DataModule(pl.LightningDataModule):
    """FER2013 with the standard protocol: Training → train, PublicTest → val, PrivateTest → test.

    Args:
        root: a Kaggle folder tree (``train|test/<class>/*.jpg``) or a FER2013 CSV.
        cache_dir: where the decoded uint8 cache is kept (``None``: no cache).
        batch_size: per-device batch size.
        num_workers: DataLoader worker processes.
        image_size: side length fed to the model (faces are 48×48; larger sizes upsample).
        augment: an albumentations transform for training images (48×48 uint8 in and out).
        val_fraction: share of train held out, stratified, when the source has no PublicTest.
        seed: seed of that split and of the training order and augmentation (see
            :class:`~emotion.data.sampler.EpochSampler`).
        balance: ``none``, ``sampler`` (class-balanced sampling) or ``loss`` (expose
            :attr:`class_weights` for a weighted loss).
        pin_memory: pin host memory for faster GPU transfers.
        label_map: class-folder names → FER2013 classes (``None``: skip that folder), for other
            datasets' folders; see :func:`emotion.data.classes.class_id` for the built-in aliases.
        soft_labels: a teacher's probabilities for the training faces (a file from
            ``experiments/make_soft_labels.py``), for a distilled student (``model.distill``); or
            ``ferplus``: the FER+ crowd votes over the 7 classes, the FER2013 label where a face has none
            (:func:`emotion.data.sources.ferplus.fer2013_soft_labels`).
        ferplus: FER+'s ``fer2013new.csv`` (or its folder), read when FER+ votes are asked for; the
            configs default to the copy shipped in ``emotion/assets/ferplus/``.
    """

    #: the label space; a model trained on this data gets these names
    class_names: tuple[str, ...] = CLASS_NAMES

    def __init__(self, root: str, cache_dir: str | None = None, batch_size: int = 64,
                 num_workers: int = 2, image_size: int = FER_SIZE, augment: Callable | None = None,
                 val_fraction: float = 0.1, seed: int = 42, balance: str = "none",
                 pin_memory: bool = True, label_map: Mapping[str, Any] | None = None,
                 soft_labels: str | None = None, ferplus: str | None = None) -> None:
        super().__init__()
        if balance not in BALANCE_MODES:
            raise EmotionError(f"data.balance={balance!r}: choose one of {', '.join(BALANCE_MODES)}.")
        self.root = str(root)
        self.cache_dir = cache_dir
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.image_size = image_size
        self.augment = augment
        self.val_fraction = val_fraction
        self.seed = seed
        self.balance = balance
        self.pin_memory = pin_memory and torch.cuda.is_available()
        self.label_map = dict(label_map or {})
        self.soft_labels = soft_labels
        self.ferplus = ferplus
        if soft_labels == "ferplus" and not ferplus:
            raise EmotionError(f"data.soft_labels=ferplus needs the votes: set data.ferplus. {fp.FERPLUS_HELP}")
        self.arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.soft: dict[str, np.ndarray] = {}  # per split: soft targets, when the data brings its own
        self._where: dict[str, tuple[np.ndarray | None, np.ndarray, int]] = {}
        self.skipped = 0
        self.skipped_classes: dict[str, int] = {}

    # -- loading -------------------------------------------------------------
    def _load(self) -> RawFER:
        return load_or_build(locate_source(self.root), self.cache_dir, self.label_map)

    def prepare_data(self) -> None:
        """Decode and cache once (rank 0 only under DDP)."""
        self._load()

    def setup(self, stage: str | None = None) -> None:
        if self.arrays:
            return
        raw = self._load()
        self.skipped, self.skipped_classes = raw.skipped, raw.skipped_classes
        split_of = raw.splits.copy()
        train_code, val_code = SPLITS.index("train"), SPLITS.index("val")
        if not (split_of == val_code).any() and (split_of == train_code).any():
            # No PublicTest in the source: hold out a seeded, stratified part of train.
            train_idx = np.flatnonzero(split_of == train_code)
            held = stratified_split(raw.labels[train_idx], self.val_fraction, self.seed)
            split_of[train_idx[held]] = val_code
            log.info("no PublicTest split in %s: held out %d training faces as val", self.root, held.sum())
        for code, name in enumerate(SPLITS):
            sel = split_of == code
            self.arrays[name] = (raw.images[sel], raw.labels[sel])
            self._where[name] = (None if raw.names is None else raw.names[sel], np.flatnonzero(sel), len(raw.labels))
        if self.soft_labels == "ferplus":
            votes = self.votes("train")
            self.soft["train"], has = fp.fer2013_soft_labels(votes, self.arrays["train"][1])
            log.info("FER+ votes as soft labels for %d of %d training faces (the FER2013 label for the rest)",
                     has.sum(), len(has))

    def votes(self, split: str) -> np.ndarray:
        """The FER+ votes of ``split``'s faces (:data:`emotion.data.sources.ferplus.VOTE_COLUMNS`; zeros: none)."""
        if not self.ferplus:
            raise EmotionError(f"FER+ votes need data.ferplus. {fp.FERPLUS_HELP}")
        names, positions, total = self._where[split]
        rows = fp.rows_of(None, total)[positions] if names is None else fp.rows_of(names, len(names))
        return fp.votes_of(rows, self.ferplus)

    @property
    def protocol(self) -> str:
        """Which labels teach a model trained on this data, in the words of the results tables."""
        if self.soft_labels == "ferplus":
            return "FER2013 labels + FER+ votes"
        if self.soft_labels:
            return "FER2013 labels + a teacher's probabilities"
        return "FER2013 labels only"

    # -- statistics ------------------------------------------------------------
    def class_counts(self, split: str = "train") -> np.ndarray:
        """Number of faces per class in ``split``."""
        self.setup()
        return np.bincount(self.arrays[split][1], minlength=len(self.class_names))

    @property
    def class_weights(self) -> list[float] | None:
        """Inverse-frequency loss weights (mean 1) when ``balance='loss'``, else ``None``."""
        if self.balance != "loss":
            return None
        counts = self.class_counts("train").astype(np.float64)
        w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / len(counts), 0.0)
        return [round(float(v), 6) for v in w / w[counts > 0].mean()]

    # -- loaders ---------------------------------------------------------------
    def dataset(self, split: str, augment: bool = False) -> FaceDataset:
        """The faces of ``split`` (``train``, ``val`` or ``test``) as a dataset."""
        self.setup()
        images, labels = self.arrays[split]
        if len(labels) == 0:
            raise EmotionError(f"'{self.root}' has no {split} faces. " + {
                "train": "Training needs Training_* files or a train/ folder.",
                "val": "A folder of class sub-folders is read as one test set: evaluate it with split=test.",
                "test": "It has no PrivateTest rows or test/ folder: train with test=false, or add them."}[split])
        soft = self.soft.get(split) if split == "train" else None
        if split == "train" and self.soft_labels and soft is None:
            soft = load_soft_labels(self.soft_labels, images, labels)
        return FaceDataset(images, labels, self.image_size, self.augment if augment else None, soft)

    def _loader(self, ds: Dataset, sampler: Sampler | None = None) -> DataLoader:
        return DataLoader(
            ds, batch_size=self.batch_size, sampler=sampler,
            num_workers=self.num_workers, pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0, drop_last=False,
            worker_init_fn=functools.partial(worker_init, parent_pid=os.getpid()) if self.num_workers else None,
        )

    def train_dataloader(self) -> DataLoader:
        ds = self.dataset("train", augment=True)
        weights = None
        if self.balance == "sampler":
            weights = 1.0 / self.class_counts("train")[ds.labels.numpy()]
        # A resumed run builds this loader once its checkpoint is restored (emotion.training.resume.ExactResume
        # sees to it), so its first epoch is known here; Lightning's set_epoch would come too late for
        # workers, which take their first indices as soon as the iterator exists.
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        return self._loader(ds, EpochSampler(len(ds), self.seed, epoch, weights))

    def _eval_sampler(self, ds: Dataset) -> UnrepeatedDistributedSampler | None:
        """Each process's share of a val/test split, every face exactly once. Lightning's own
        DistributedSampler would repeat faces to even out the processes, and count them twice."""
        if self.trainer is None or self.trainer.world_size <= 1:
            return None
        return UnrepeatedDistributedSampler(ds, num_replicas=self.trainer.world_size, rank=self.trainer.global_rank,
                                            shuffle=False)

    def val_dataloader(self) -> DataLoader:
        ds = self.dataset("val")
        return self._loader(ds, self._eval_sampler(ds))

    def test_dataloader(self) -> DataLoader:
        ds = self.dataset("test")
        return self._loader(ds, self._eval_sampler(ds))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={self.root!r}, image_size={self.image_size}, balance={self.balance!r})"


class FERPlusDataModule(FER2013DataModule):
    """FER+ (Barsoum et al., ICMI 2016): the FER2013 faces with their crowd labels, 8 classes (contempt
    added, id 7), in the paper's protocol: faces whose label is unknown or not-a-face are dropped; val
    (FER+ Valid = PublicTest) and test (FER+ Test = PrivateTest) are scored on the majority label.

    Args:
        mode: how the training faces are labelled: ``majority`` (the majority vote, a hard label) or
            ``crossentropy`` (the vote distribution as soft targets, with ``model.distill`` at weight 1
            and temperature 1, which is cross-entropy on the distribution).
        **kwargs: as :class:`FER2013DataModule`; ``ferplus`` is required, ``soft_labels`` must be unset.
    """

    class_names = fp.FERPLUS_CLASS_NAMES
    MODES = ("majority", "crossentropy")

    def __init__(self, *args: Any, mode: str = "crossentropy", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if mode not in self.MODES:
            raise EmotionError(f"data.mode={mode!r}: choose one of {', '.join(self.MODES)}.")
        if not self.ferplus:
            raise EmotionError(f"data=ferplus needs the votes: set data.ferplus. {fp.FERPLUS_HELP}")
        if self.soft_labels:
            raise EmotionError("data=ferplus brings its own targets (data.mode): leave data.soft_labels unset.")
        self.mode = mode
        self.dropped: dict[str, int] = {}

    @property
    def protocol(self) -> str:
        return f"FER+ ({self.mode}, 8 classes)"

    def setup(self, stage: str | None = None) -> None:
        if self.arrays:
            return
        super().setup(stage)
        for split in SPLITS:
            votes = self.votes(split)
            labels = fp.majority_labels(votes)
            keep = labels >= 0
            if split == "train" and self.mode == "crossentropy":
                dist, keep = fp.vote_distributions(votes)
                labels = dist.argmax(1)
                self.soft[split] = dist[keep]
            images = self.arrays[split][0]
            self.arrays[split] = (images[keep], labels[keep].astype(np.uint8))
            names, positions, total = self._where[split]
            self._where[split] = (None if names is None else names[keep], positions[keep], total)
            self.dropped[split] = int((~keep).sum())
        log.info("FER+ (%s): %s faces kept, %s dropped (unknown, not a face, no majority or no FER+ row)",
                 self.mode, {s: len(self.arrays[s][1]) for s in SPLITS}, self.dropped)

