"""Snapshot-ensemble members from one run (Huang et al. 2017, "Snapshot Ensembles: Train 1, get M
for free"): with ``model.cycles=M`` the cosine schedule restarts M times, and the weights at the
end of each cycle, where the learning rate has decayed to nearly zero, are one member each."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl

__all__ = ["SnapshotCheckpoints"]


class SnapshotCheckpoints(pl.Callback):
    """Save ``snapshot_<k>_epoch_<NNN>.ckpt`` in ``dirpath`` when cycle ``k`` (1-based) ends.

    Saved through ``trainer.save_checkpoint``, so with ``callbacks=ema`` the file holds the average,
    as every other checkpoint does, and ``emotion.evaluate 'ckpt_path=[…]'`` takes the snapshots as an
    ensemble. Does nothing with one cycle.
    """

    def __init__(self, dirpath: str | Path) -> None:
        self.dirpath = Path(dirpath)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        cycles = int(pl_module.hparams.get("cycles", 1))
        if cycles <= 1 or trainer.fast_dev_run or not trainer.max_epochs:  # (train epochs end only in a fit)
            return
        per_cycle = trainer.max_epochs // cycles
        epoch = trainer.current_epoch
        if (epoch + 1) % per_cycle == 0:
            trainer.save_checkpoint(self.dirpath / f"snapshot_{(epoch + 1) // per_cycle}_epoch_{epoch:03d}.ckpt")
