"""An exponential moving average of the weights, validated and saved in place of the raw weights."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import EMAWeightAveraging
from pytorch_lightning.trainer.states import TrainerFn

__all__ = ["EMA"]


class EMA(EMAWeightAveraging):
    """Lightning's :class:`EMAWeightAveraging`, made safe for ``validate``/``test`` after a fit.

    While fitting, validation scores the average and every checkpoint holds it as its
    ``state_dict`` (the raw weights go under ``current_model_state``, for resuming), so the
    best-on-val checkpoint is the best average and exports and loads like any other.

    Lightning's callback also acts when a later ``trainer.validate/test(ckpt_path=…)`` loads such
    a checkpoint: it puts the raw weights back into the module and swaps its own average in for
    validation only, so a test would score the raw weights. Outside fitting this one does nothing:
    the ``state_dict`` loaded is already the average.

    Args:
        decay: weight of the running average per optimizer step (0.999: about the last 1,000 steps).
    """

    def __init__(self, decay: float = 0.999, **kwargs: Any) -> None:
        super().__init__(decay=decay, **kwargs)

    @staticmethod
    def _fitting(trainer: pl.Trainer) -> bool:
        return trainer.state.fn == TrainerFn.FITTING

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._fitting(trainer):
            super().on_validation_epoch_start(trainer, pl_module)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._fitting(trainer):
            super().on_validation_epoch_end(trainer, pl_module)

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        if self._fitting(trainer):
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
