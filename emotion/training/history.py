"""A callback that keeps each epoch's metrics, so ``metrics.json`` holds the learning curves
whatever logger (or none) the run used."""

from __future__ import annotations

import pytorch_lightning as pl

__all__ = ["EpochHistory"]


def _scalars(trainer: pl.Trainer, prefix: str) -> dict[str, float]:
    return {k: round(float(v), 6) for k, v in trainer.callback_metrics.items()
            if k.startswith(prefix) and not k.endswith("_step") and v.numel() == 1}


class EpochHistory(pl.Callback):
    """One row per training epoch: its ``train/*`` and ``val/*`` metrics and the learning rate."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []
        self._train_pending = False

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else float("nan")
        self.epochs.append({"epoch": trainer.current_epoch, "lr": lr, **_scalars(trainer, "val/")})
        self._train_pending = True

    # Lightning calls callbacks' on_train_epoch_end before the module's, where the module logs its
    # epoch-level train metrics; they are collected once they exist.
    def _collect_train(self, trainer: pl.Trainer) -> None:
        if self._train_pending and self.epochs:
            self.epochs[-1].update(_scalars(trainer, "train/"))
            self._train_pending = False

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._collect_train(trainer)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._collect_train(trainer)

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        # Checkpoints are written after the module has logged the epoch's train metrics, but before
        # the next epoch would collect them: take them now so that a resumed run has them.
        self._collect_train(trainer)
        if self.state_key in checkpoint.get("callbacks", {}):
            checkpoint["callbacks"][self.state_key] = self.state_dict()

    def state_dict(self) -> dict:
        return {"epochs": self.epochs}

    def load_state_dict(self, state_dict: dict) -> None:
        # A resumed run keeps the rows of the epochs done before the interruption.
        self.epochs = [dict(r) for r in state_dict.get("epochs", [])]
        self._train_pending = False
