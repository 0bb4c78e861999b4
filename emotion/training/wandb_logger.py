"""Lightning's W&B logger, with model checkpoints logged as artifacts offline too."""

from __future__ import annotations

from typing import Any, Literal

from pytorch_lightning.loggers import WandbLogger as _LightningWandbLogger

__all__ = ["WandbLogger"]


class WandbLogger(_LightningWandbLogger):
    """:class:`pytorch_lightning.loggers.WandbLogger` that accepts ``log_model`` offline.

    Lightning refuses ``offline=True`` with ``log_model`` because nothing can be uploaded at once.
    But W&B keeps artifacts of an offline run in its folder, and ``wandb sync`` uploads them with the
    run later, which is what a run on a cluster node without network wants: ``log_model=true``
    logs the best checkpoint (``all``: every checkpoint) as a ``model`` artifact either way.
    """

    def __init__(self, *args: Any, offline: bool = False, log_model: Literal["all"] | bool = False,
                 **kwargs: Any) -> None:
        super().__init__(*args, offline=offline, log_model=False, **kwargs)
        self._log_model = log_model  # what Lightning's after_save_checkpoint and finalize read
