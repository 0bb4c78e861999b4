"""Training entry point: ``python -m emotion.train [hydra overrides]``."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint, ProgressBar
from pytorch_lightning.loggers import Logger, WandbLogger

from emotion import config  # noqa: F401  (registers the config resolvers)
from emotion.cli import quiet_library_warnings, user_errors_exit
from emotion.errors import EmotionError
from emotion.history import EpochHistory
from emotion.io import write_json
from emotion.models import predict_proba
from emotion.plots import plot_confusion_matrix, plot_prediction_grid
from emotion.results import split_metrics
from emotion.runinfo import device_name, git_commit

__all__ = ["train", "main"]

log = logging.getLogger(__name__)


def _instantiate_all(cfg: DictConfig | None) -> list[Any]:
    """Instantiate every non-null ``_target_`` entry of a config group dict."""
    return [instantiate(c) for c in (cfg or {}).values() if c is not None and "_target_" in c]


def _resolve_ckpt_path(cfg: DictConfig) -> str | None:
    if cfg.get("ckpt_path") != "last":
        return cfg.get("ckpt_path")
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    if not last.is_file():
        raise EmotionError(f"ckpt_path=last, but there is no '{last}'. Run from the interrupted run's folder "
                           "(hydra.run.dir=...) or give the checkpoint's path.")
    return str(last)


def _sample_predictions(model: pl.LightningModule, dm, path: Path, n: int = 32) -> None:
    """Draw the first ``n`` test faces with the model's predictions."""
    ds = dm.dataset("test")
    n = min(n, len(ds))
    x = torch.stack([ds[i][0] for i in range(n)]).to(model.device)
    was_training = model.training
    probs = predict_proba(model.eval(), x).cpu().numpy()
    model.train(was_training)
    images, labels = dm.arrays["test"]
    plot_prediction_grid(images[:n], labels[:n], probs, model.hparams.class_names, path)


def _command() -> str:
    """The command that reproduces this run: a multirun job's own overrides, not the sweep's command line."""
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        task = [o for o in HydraConfig.get().overrides.task if not o.startswith("hparams_search=")]
        return " ".join(["python -m emotion.train", *task])
    return " ".join(["python -m emotion.train", *sys.argv[1:]])


def train(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit a model as ``cfg`` says, test its best-on-val checkpoint once, write ``metrics.json``.

    Returns:
        The metrics logged by Lightning and the objects built (datamodule, model, trainer, …).
    """
    start, commit = time.perf_counter(), git_commit()  # the code as it was when the run started
    pl.seed_everything(cfg.seed, workers=True)
    out = Path(cfg.paths.output_dir)

    dm = instantiate(cfg.data)
    dm.prepare_data()
    model = instantiate(cfg.model, class_weights=dm.class_weights)

    loggers: list[Logger] = _instantiate_all(cfg.get("logger"))
    history = EpochHistory()
    callbacks = [*_instantiate_all(cfg.get("callbacks")), history]
    if not loggers:  # LearningRateMonitor needs somewhere to log to
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    if cfg.trainer.get("enable_progress_bar") is False:
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    trainer.fit(model, datamodule=dm, ckpt_path=_resolve_ckpt_path(cfg))
    metrics = dict(trainer.callback_metrics)
    # validate/test below restore trainer and callback state from the best checkpoint: keep these now.
    curves, epochs_done = list(history.epochs), trainer.current_epoch

    ckpt_cb = next((c for c in callbacks if isinstance(c, ModelCheckpoint)), None)
    best = ckpt_cb.best_model_path if ckpt_cb is not None and ckpt_cb.best_model_path else None
    if best is None:
        log.warning("no best checkpoint (fast_dev_run or no checkpoint callback): evaluating the final weights")
    results: dict[str, Any] = {}
    if cfg.get("test"):
        # Val for the record, then PrivateTest once, both on the best-on-val checkpoint.
        trainer.validate(model, datamodule=dm, ckpt_path=best, verbose=False)
        results["val"] = split_metrics(model.confusion["val"], model.hparams.class_names)
        trainer.test(model, datamodule=dm, ckpt_path=best, verbose=False)
        results["test"] = split_metrics(model.confusion["test"], model.hparams.class_names)
        metrics.update(trainer.callback_metrics)

    if trainer.is_global_zero:
        results.update({
            "arch": model.hparams.arch,
            "params": sum(p.numel() for p in model.parameters()),
            "tta": "none",
            "epochs": epochs_done,
            "best_epoch": _epoch_of(best),
            "val_acc_best": float(metrics["val/acc_best"]) if "val/acc_best" in metrics else None,
            "checkpoint": best,
            "wall_time_s": round(time.perf_counter() - start, 2),
            "device": device_name(cfg.trainer.get("accelerator")),
            "precision": str(trainer.precision),
            "git_commit": commit,
            "command": _command(),
            "skipped_images": dm.skipped,
            "history": curves,
        })
        write_json(out / "metrics.json", results)
        if "test" in results:
            names = model.hparams.class_names
            plot_confusion_matrix(np.array(results["test"]["confusion_matrix"]), names,
                                  out / "confusion_matrix.png",
                                  title=f"{model.hparams.arch} PrivateTest acc {results['test']['acc']:.2%}")
            _sample_predictions(model, dm, out / "predictions.png")
            for lg in loggers:
                if isinstance(lg, WandbLogger):
                    lg.log_image("test/confusion_matrix", [str(out / "confusion_matrix.png")])
                    lg.log_image("test/predictions", [str(out / "predictions.png")])
        log.info("wrote %s", out / "metrics.json")
    for lg in loggers:
        if isinstance(lg, WandbLogger):
            lg.experiment.finish()
    objects = {"cfg": cfg, "datamodule": dm, "model": model, "trainer": trainer, "results": results}
    return {k: float(v) for k, v in metrics.items()}, objects


def _epoch_of(ckpt: str | None) -> int | None:
    name = Path(ckpt).stem if ckpt else ""
    return int(name.split("_")[-1]) if name.startswith("epoch_") and name.split("_")[-1].isdigit() else None


@hydra.main(version_base="1.3", config_path=str(config.CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the optimised metric for sweepers."""
    quiet_library_warnings()
    metrics, _ = user_errors_exit(lambda: train(cfg))
    value = metrics.get(cfg.get("optimized_metric"))
    if value is None and cfg.get("optimized_metric"):
        # A sweeper (Optuna) needs a number: say why it gets none instead of failing later, vaguely.
        log.warning("optimized_metric=%s was not logged (logged: %s); returning None",
                    cfg.optimized_metric, ", ".join(sorted(metrics)) or "nothing")
    return None if value is None else float(value)


if __name__ == "__main__":
    main()
