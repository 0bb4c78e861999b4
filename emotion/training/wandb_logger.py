"""Lightning's W&B logger, with model checkpoints logged as artifacts offline too."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from omegaconf import DictConfig, open_dict
from pytorch_lightning.loggers import WandbLogger as _LightningWandbLogger

__all__ = ["WandbLogger", "previous_wandb_id", "continue_wandb_run"]


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


def previous_wandb_id(run_dir: Path) -> str | None:
    """The W&B run id an interrupted run logged to, so the resumed one continues it."""
    ids = [(m.group(1), m.group(2)) for d in (run_dir / "wandb").glob("*run-*")
           if (m := re.fullmatch(r"(?:offline-)?run-(\d{8}_\d{6})-(\w+)", d.name))]
    return max(ids)[1] if ids else None


def continue_wandb_run(cfg: DictConfig, run_dir: Path) -> None:
    """A resumed run logs to the W&B run it logged to before, rather than starting a second one."""
    wandb_cfg = (cfg.get("logger") or {}).get("wandb")
    if wandb_cfg is None or wandb_cfg.get("id") is not None:
        return
    wandb_id = previous_wandb_id(run_dir)
    if wandb_id:
        with open_dict(cfg):
            wandb_cfg.id, wandb_cfg.resume = wandb_id, "allow"
