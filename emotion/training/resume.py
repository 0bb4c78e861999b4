"""Resuming interrupted training: which run to continue, and what makes the continuation exact.

A run saves ``checkpoints/last.ckpt`` at the end of every epoch (:class:`EveryEpochCheckpoint`).
Killed at any moment after that, ``python -m emotion.train <same overrides> ckpt_path=last``
continues it in its own folder; the epoch in progress is redone. With a fixed seed on CPU the
final weights equal an uninterrupted run's, because nothing random depends on how the process got
to an epoch:

* the data order and augmentation come from ``(seed, epoch)``
  (:class:`~emotion.data.sampler.EpochSampler`);
* the global generators (dropout, mixup) are reseeded from ``(seed, step)`` before each step,
  and a resumed run's loader is built after the restore (:class:`ExactResume`);
* optimizer, scheduler, loop counters, callbacks and the best val accuracy are in the checkpoint;
* checkpoints are replaced atomically (:class:`AtomicCheckpointIO`): a kill while writing leaves
  the previous one whole.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import ModelCheckpoint

from emotion.data.sampler import derive_seed
from emotion.errors import EmotionError
from emotion.io import atomic_path

__all__ = ["LAST_CKPT", "ExactResume", "AtomicCheckpointIO", "EveryEpochCheckpoint", "find_interrupted_run",
           "job_overrides", "names_run_dir", "wants_resume"]

LAST_CKPT = Path("checkpoints") / "last.ckpt"
_RNG_STREAM = 1  # stream 0 is the sampler's


class ExactResume(pl.Callback):
    """Make the steps after a restart draw the same random numbers as an uninterrupted run.

    * Before every training step, torch, numpy and ``random`` are reseeded from ``(seed, global
      step)``. Per step, not per epoch: between an epoch's start and its first step Lightning
      creates the DataLoader iterator, which draws from the global generator in an uninterrupted
      run but not in a freshly resumed one.
    * A resumed run has its training loader built again once the checkpoint is restored: Lightning
      first builds it earlier (to count the scheduler's steps), when prefetching workers would
      take epoch 0's order from :class:`~emotion.data.sampler.EpochSampler`.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch > 0:
            trainer.fit_loop._combined_loader = None  # the fit loop rebuilds it before the epoch

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        s = derive_seed(self.seed, trainer.global_step, _RNG_STREAM)
        torch.manual_seed(s)  # all CUDA devices too
        np.random.seed(s)
        random.seed(s)


class EveryEpochCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` (the best-on-val checkpoints) whose ``last.ckpt`` is written
    at the end of every epoch.

    With ``save_last=True`` Lightning 2.6 writes ``last.ckpt`` only in epochs that also save a new
    best checkpoint, so a run killed after epochs without a val improvement would redo them all.
    """

    def _save_last_if_not_saved(self, trainer: pl.Trainer) -> None:
        if self.save_last and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_skip_saving_checkpoint(trainer) and not self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_not_saved(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if not self._should_skip_saving_checkpoint(trainer) and self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_not_saved(trainer)


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to a temporary file beside the target, fsync, then rename.

    Lightning's own atomic save stages the file in the system temp folder; on another file system
    its final move is a copy, which a kill can cut short.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike,
                        storage_options: Any | None = None) -> None:
        if "://" in str(path):  # remote storage: Lightning's fsspec transaction
            return super().save_checkpoint(checkpoint, path, storage_options)
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)


def names_run_dir(argv: Sequence[str]) -> bool:
    """Whether the command picks its own folder: a ``hydra.run.dir``, or a multirun's job folders."""
    return any(a.startswith("hydra.run.dir=") or a in ("-m", "--multirun") for a in argv)


def wants_resume(argv: Sequence[str]) -> bool:
    """``ckpt_path=last`` without a chosen ``hydra.run.dir``, in a single run."""
    return "ckpt_path=last" in argv and not names_run_dir(argv)


def job_overrides(argv: Sequence[str]) -> list[str]:
    """The overrides that define a run: without flags, Hydra's own settings and ``ckpt_path``."""
    return sorted(a for a in argv if not a.startswith(("-", "hydra.", "hydra/", "+hydra", "ckpt_path=")))


def _recorded_overrides(run: Path) -> list[str] | None:
    import yaml

    try:
        return job_overrides(yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text()) or [])
    except (OSError, yaml.YAMLError, TypeError):
        return None


def find_interrupted_run(runs_root: Path, argv: Sequence[str]) -> Path:
    """The newest unfinished run under ``runs_root`` started with the same overrides as ``argv``.

    Raises:
        EmotionError: no such run, or it was stopped before its first checkpoint.
    """
    wanted = job_overrides(argv)
    same = [r for r in (sorted(runs_root.iterdir()) if runs_root.is_dir() else [])
            if r.is_dir() and _recorded_overrides(r) == wanted]
    shown = " ".join(wanted) or "(no overrides)"
    if not same:
        raise EmotionError(f"ckpt_path=last: no earlier run with the overrides {shown} in '{runs_root}'. "
                           "Repeat the interrupted command exactly, adding ckpt_path=last, or choose the run "
                           "folder with hydra.run.dir=…")
    unfinished = [r for r in same if not (r / "metrics.json").exists()]
    if not unfinished:
        raise EmotionError(f"ckpt_path=last: the runs with the overrides {shown} have all finished "
                           f"(newest: '{same[-1]}'); there is nothing to resume.")
    resumable = [r for r in unfinished if (r / LAST_CKPT).is_file()]
    if not resumable:
        raise EmotionError(f"ckpt_path=last: '{unfinished[-1]}' stopped before its first epoch ended (no "
                           f"{LAST_CKPT}); start it again without ckpt_path.")
    return max(resumable, key=lambda r: (r / LAST_CKPT).stat().st_mtime)
