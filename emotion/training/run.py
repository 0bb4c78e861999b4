"""The steps of a training run, as a library: build the data, model, loggers, callbacks and trainer from a
config, fit, evaluate the best-on-val checkpoint (PrivateTest once), write ``metrics.json``.
``python -m emotion.train`` (:mod:`emotion.train`) is the command-line entry point over :func:`train`."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint, ProgressBar
from pytorch_lightning.loggers import Logger, WandbLogger
from pytorch_lightning.trainer.states import TrainerStatus
from pytorch_lightning.utilities.exceptions import SIGTERMException

from emotion import config  # noqa: F401  (registers the config resolvers)
from emotion.checkpoint import init_weights, model_meta, read_checkpoint
from emotion.config.rules import TRAIN_RULES, check_config
from emotion.device import choose_precision, device_name
from emotion.errors import EmotionError, TrainingInterrupted
from emotion.io import write_json
from emotion.models import TTA_MODES, predict_proba
from emotion.reporting.figures import plot_confusion_matrix, plot_prediction_grid
from emotion.reporting.record import run_record, split_metrics
from emotion.runinfo import git_commit
from emotion.training.cluster import requeued_checkpoint
from emotion.training.history import EpochHistory
from emotion.training.resume import (
    LAST_CKPT,
    AtomicCheckpointIO,
    ExactResume,
)
from emotion.training.wandb_logger import continue_wandb_run

__all__ = ["train", "TrainResult", "TrainingRun", "build", "fit", "evaluate_best", "choose_tta", "write_record"]

log = logging.getLogger(__name__)


def _instantiate_all(cfg: DictConfig | None) -> list[Any]:
    """Instantiate every non-null ``_target_`` entry of a config group dict."""
    return [instantiate(c) for c in (cfg or {}).values() if c is not None and "_target_" in c]


def _resolve_ckpt_path(cfg: DictConfig) -> str | None:
    """The checkpoint to resume from, checked: a truncated or unsafe file is refused here in one line."""
    path = cfg.get("ckpt_path")
    if path is None and (requeued := requeued_checkpoint(Path(cfg.paths.output_dir))) is not None:
        log.info("SLURM requeued this job: going on from %s", requeued)
        path = requeued
    if path == "last":
        path = Path(cfg.paths.output_dir) / LAST_CKPT
        if not path.is_file():
            raise EmotionError(f"ckpt_path=last, but there is no '{path}'. Repeat the interrupted command with "
                               "ckpt_path=last, or choose its folder with hydra.run.dir=...")
    if path is not None:
        read_checkpoint(path)
    return None if path is None else str(path)


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


def _interrupted(exc: SystemExit, trainer: pl.Trainer, out: Path, command: str) -> TrainingInterrupted:
    """Lightning stops gracefully on Ctrl-C and SIGTERM and then exits; say how to go on instead."""
    sigterm = isinstance(exc, SIGTERMException)
    last = out / LAST_CKPT
    done = trainer.current_epoch
    saved = (f"{done} finished epoch{'s are' if done != 1 else ' is'} saved in '{last}'. Resume with:  "
             f"{command} ckpt_path=last" if last.is_file()
             else "it stopped before its first epoch ended, so nothing is saved: start it again.")
    return TrainingInterrupted(f"training interrupted by {'SIGTERM' if sigterm else 'Ctrl-C'} during epoch "
                               f"{done}; {saved}", exit_code=143 if sigterm else 130)


@dataclass
class TrainingRun:
    """What :func:`train` builds from the config, handed from one step to the next."""

    cfg: DictConfig
    out: Path
    datamodule: Any
    model: pl.LightningModule
    trainer: pl.Trainer
    loggers: list[Logger]
    callbacks: list[pl.Callback]
    history: EpochHistory
    command: str = "python -m emotion.train"
    #: Which labels taught the model, in the words of the results tables (the data's, and init_from's).
    protocol: str | None = None


def build(cfg: DictConfig, ckpt_path: str | None, command: str = "python -m emotion.train") -> TrainingRun:
    """Data, model, loggers, callbacks and trainer as ``cfg`` says (a resumed run keeps its W&B id)."""
    out = Path(cfg.paths.output_dir)
    if ckpt_path:
        continue_wandb_run(cfg, out)
    dm = instantiate(cfg.data)
    dm.prepare_data()
    # The data decides the label space (data=ferplus adds contempt), the model config the rest.
    model = instantiate(cfg.model, class_weights=dm.class_weights, num_classes=len(dm.class_names),
                        class_names=list(dm.class_names))
    protocol = getattr(dm, "protocol", None)
    if cfg.get("init_from"):
        if ckpt_path:  # a resumed run has its own weights already: only what taught them is read
            meta = model_meta(cfg.init_from)
        else:
            copied, fresh, meta = init_weights(model.model, cfg.init_from)
            log.info("init_from=%s: %d tensors copied; fresh: %s", cfg.init_from, len(copied),
                     ", ".join(fresh) or "none")
        taught_by = meta.get("protocol", f"'{cfg.init_from}'").removesuffix(", from scratch")
        # Not "FER2013 labels only" any more: the weights it started from were taught by other labels.
        protocol = f"{str(protocol).removesuffix(' only')}, started from the weights of a model taught by {taught_by}"
    loggers: list[Logger] = _instantiate_all(cfg.get("logger"))
    history = EpochHistory()
    callbacks = [*_instantiate_all(cfg.get("callbacks")), history, ExactResume(cfg.seed)]
    if not loggers:  # LearningRateMonitor needs somewhere to log to
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    if cfg.trainer.get("enable_progress_bar") is False:
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False,
                                      plugins=[AtomicCheckpointIO()])
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    log.info("precision %s: %s", trainer.precision, _why_precision(cfg.trainer))
    if trainer.world_size > 1:
        log.info("process %d of %d, joined by %s", trainer.global_rank, trainer.world_size,
                 type(trainer.strategy.cluster_environment).__name__)
    return TrainingRun(cfg, out, dm, model, trainer, loggers, callbacks, history, command, protocol)


def fit(run: TrainingRun, ckpt_path: str | None) -> tuple[dict[str, torch.Tensor], list[dict], int]:
    """Train; returns the logged metrics, the per-epoch history and the number of epochs done.

    Raises:
        TrainingInterrupted: on SIGTERM or Ctrl-C, saying how to resume.
    """
    model, trainer = run.model, run.trainer
    try:
        trainer.fit(model, datamodule=run.datamodule, ckpt_path=ckpt_path)
    except SystemExit as e:
        if trainer.state.status != TrainerStatus.INTERRUPTED:
            raise
        _finish_wandb(run.loggers, exit_code=1)
        raise _interrupted(e, trainer, run.out, run.command) from None
    metrics = dict(trainer.callback_metrics)
    if "val/acc_best" not in metrics and torch.isfinite(model.val_acc_best.max_value):
        # Resumed after its last epoch, the fit ran no validation: the best is in the restored state.
        metrics["val/acc_best"] = model.val_acc_best.max_value.clone()
    # validate/test later restore trainer and callback state from the best checkpoint: keep these now.
    return metrics, list(run.history.epochs), trainer.current_epoch


def evaluate_best(run: TrainingRun) -> tuple[dict[str, dict], str | None, dict[str, torch.Tensor]]:
    """Val for the record, then PrivateTest once, both on the best-on-val checkpoint, with the
    test-time augmentation the config names, fixed before the run. ``tta: auto`` picks it here,
    by PublicTest accuracy alone (:func:`choose_tta`).

    Returns:
        The ``val`` and ``test`` split metrics (none when ``cfg.test`` is off; with ``tta: auto``
        also ``tta_val_acc``, every mode's PublicTest accuracy), the best checkpoint's path, and
        what Lightning logged.
    """
    ckpt_cb = next((c for c in run.callbacks if isinstance(c, ModelCheckpoint)), None)
    best = ckpt_cb.best_model_path if ckpt_cb is not None and ckpt_cb.best_model_path else None
    if best is None:
        log.warning("no best checkpoint (fast_dev_run or no checkpoint callback): evaluating the final weights")
    if not run.cfg.get("test"):
        return {}, best, {}
    model, trainer, names = run.model, run.trainer, run.model.hparams.class_names
    splits: dict[str, Any] = {}
    tta = run.cfg.get("tta", "none")
    if tta == "auto":
        splits["tta_val_acc"] = choose_tta(run, best)
        tta = max(splits["tta_val_acc"], key=splits["tta_val_acc"].get)  # a tie keeps the cheaper mode
        log.info("tta=%s: the best on PublicTest of %s", tta, splits["tta_val_acc"])
    model.set_tta(tta)
    trainer.validate(model, datamodule=run.datamodule, ckpt_path=best, verbose=False)
    splits["val"] = split_metrics(model.confusion["val"], names)
    trainer.test(model, datamodule=run.datamodule, ckpt_path=best, verbose=False)
    splits["test"] = split_metrics(model.confusion["test"], names)
    return splits, best, dict(trainer.callback_metrics)


def choose_tta(run: TrainingRun, best: str | None) -> dict[str, float]:
    """PublicTest accuracy of the best checkpoint under each test-time augmentation, cheapest first."""
    accs = {}
    for mode in TTA_MODES:
        run.model.set_tta(mode)
        run.trainer.validate(run.model, datamodule=run.datamodule, ckpt_path=best, verbose=False)
        accs[mode] = split_metrics(run.model.confusion["val"], run.model.hparams.class_names)["acc"]
    return accs


def write_record(run: TrainingRun, record: dict[str, Any]) -> None:
    """``metrics.json``, and with a test result its confusion matrix and sample predictions (also to W&B)."""
    out, model = run.out, run.model
    write_json(out / "metrics.json", record)
    if "test" in record:
        names = model.hparams.class_names
        plot_confusion_matrix(np.array(record["test"]["confusion_matrix"]), names, out / "confusion_matrix.png",
                              title=f"{model.hparams.arch} PrivateTest acc {record['test']['acc']:.2%}")
        _sample_predictions(model, run.datamodule, out / "predictions.png")
        for lg in run.loggers:
            if isinstance(lg, WandbLogger):
                lg.log_image("test/confusion_matrix", [str(out / "confusion_matrix.png")])
                lg.log_image("test/predictions", [str(out / "predictions.png")])
    log.info("wrote %s", out / "metrics.json")


@dataclass
class TrainResult:
    """What :func:`train` returns: the metrics Lightning logged (floats), the ``metrics.json``
    record (empty on processes other than rank 0), and the objects the run built."""

    metrics: dict[str, float]
    record: dict[str, Any]
    cfg: DictConfig
    datamodule: Any
    model: pl.LightningModule
    trainer: pl.Trainer


def train(cfg: DictConfig, command: str | None = None) -> TrainResult:
    """Fit a model as ``cfg`` says, test its best-on-val checkpoint once, write ``metrics.json``.

    Args:
        cfg: the composed config (``python -m emotion.train`` composes it with Hydra).
        command: the command that reproduces this run, recorded in ``metrics.json`` and printed with
            ``ckpt_path=last`` when the run is interrupted (default: ``python -m emotion.train``, for
            runs started from Python).
    """
    command = command or "python -m emotion.train"
    check_config(cfg, TRAIN_RULES)  # a bad value is one line now, not a traceback later
    start, commit = time.perf_counter(), git_commit()  # the code as it was when the run started
    pl.seed_everything(cfg.seed, workers=True)
    ckpt_path = _resolve_ckpt_path(cfg)
    run = build(cfg, ckpt_path, command)
    metrics, curves, epochs_done = fit(run, ckpt_path)
    splits, best, logged = evaluate_best(run)
    metrics.update(logged)
    record: dict[str, Any] = {}
    if run.trainer.is_global_zero:
        model = run.model
        record = run_record(
            splits, arch=model.hparams.arch, params=sum(p.numel() for p in model.parameters()), tta=model.tta,
            checkpoint=best, started=start, device=device_name(cfg.trainer.get("accelerator")), commit=commit,
            command=command, epochs=epochs_done, best_epoch=_epoch_of(best),
            val_acc_best=float(metrics["val/acc_best"]) if "val/acc_best" in metrics else None,
            precision=str(run.trainer.precision), skipped_images=run.datamodule.skipped, history=curves,
            protocol=run.protocol)
        write_record(run, record)
    _finish_wandb(run.loggers)
    return TrainResult({k: float(v) for k, v in metrics.items()}, record, cfg, run.datamodule, run.model, run.trainer)


def _why_precision(trainer_cfg: DictConfig) -> str:
    """Why the run trains in the precision it does: the automatic choice's reason, or the config."""
    raw = OmegaConf.to_container(trainer_cfg, resolve=False).get("precision")
    if isinstance(raw, str) and raw.startswith("${auto_precision:"):
        return "chosen automatically, " + choose_precision(trainer_cfg.get("accelerator", "auto"))[1]
    return "set by trainer.precision"


def _finish_wandb(loggers: list[Logger], exit_code: int = 0) -> None:
    for lg in loggers:
        if isinstance(lg, WandbLogger):
            lg.experiment.finish(exit_code=exit_code)


def _epoch_of(ckpt: str | None) -> int | None:
    """The epoch a checkpoint was saved at, read from the checkpoint (its file name is the config's)."""
    return int(read_checkpoint(ckpt)["epoch"]) if ckpt else None
