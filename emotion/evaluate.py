"""Re-evaluate a checkpoint: ``python -m emotion.evaluate ckpt_path=… [split=test|val] [tta=none|flip|tencrop]``."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig

from emotion import config  # noqa: F401  (registers the config resolvers)
from emotion.checkpoint import load_model
from emotion.data.classes import SPLIT_NAMES
from emotion.cli import quiet_library_warnings, user_errors_exit
from emotion.errors import EmotionError
from emotion.io import write_json
from emotion.plots import plot_confusion_matrix
from emotion.results import split_metrics
from emotion.runinfo import device_name, git_commit

__all__ = ["evaluate", "main"]

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate ``cfg.ckpt_path`` on ``cfg.split`` with ``cfg.tta``; write ``metrics.json`` and a plot."""
    if cfg.split not in SPLIT_NAMES:
        raise EmotionError(f"split={cfg.split!r}: choose val (PublicTest) or test (PrivateTest).")
    start = time.perf_counter()
    pl.seed_everything(cfg.seed, workers=True)
    model = load_model(cfg.ckpt_path, device="cpu")  # weights only; Lightning moves it
    model.set_tta(cfg.tta)
    # The data must reach the model at the size it was trained on.
    dm = instantiate(cfg.data, image_size=model.hparams.input_size, augment=None)
    trainer: pl.Trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    run = trainer.validate if cfg.split == "val" else trainer.test
    run(model, datamodule=dm, verbose=False)
    names = model.hparams.class_names
    results = {
        cfg.split: split_metrics(model.confusion[cfg.split], names),
        "arch": model.hparams.arch,
        "params": sum(p.numel() for p in model.parameters()),
        "tta": cfg.tta,
        "checkpoint": str(Path(cfg.ckpt_path).resolve()),
        "data_root": str(dm.root),
        "wall_time_s": round(time.perf_counter() - start, 2),
        "device": device_name(cfg.trainer.get("accelerator")),
        "git_commit": git_commit(),
        "command": " ".join(["python -m emotion.evaluate", *sys.argv[1:]]),
    }
    out = Path(cfg.paths.output_dir)
    write_json(out / "metrics.json", results)
    acc = results[cfg.split]["acc"]
    plot_confusion_matrix(results[cfg.split]["confusion_matrix"], names, out / "confusion_matrix.png",
                          title=f"{model.hparams.arch} {SPLIT_NAMES[cfg.split]} acc {acc:.2%} (tta={cfg.tta})")
    print(f"{SPLIT_NAMES[cfg.split]} accuracy {acc:.4f}  macro-F1 {results[cfg.split]['f1_macro']:.4f}  "
          f"(tta={cfg.tta}) -> {out / 'metrics.json'}")
    return results


@hydra.main(version_base="1.3", config_path=str(config.CONFIG_DIR), config_name="eval")
def main(cfg: DictConfig) -> float:
    """Hydra entry point; returns the accuracy."""
    quiet_library_warnings()
    return user_errors_exit(lambda: evaluate(cfg))[cfg.split]["acc"]


if __name__ == "__main__":
    main()
