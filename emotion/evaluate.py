"""Re-evaluate a checkpoint, or an ensemble of several, on FER2013 or on any folder of class sub-folders:
``python -m emotion.evaluate ckpt_path=…|[a.ckpt,b.ckpt,…] [split=test|val] [tta=none|flip|tencrop]
[data.root=<folder> 'data.label_map={contempt: neutral}']``."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from emotion import config  # noqa: F401  (registers the config resolvers)
from emotion.checkpoint import load_model
from emotion.config.rules import EVAL_RULES, check_config
from emotion.data.classes import SPLIT_NAMES
from emotion.data.sources.fer2013 import is_test_set_folder, locate_source
from emotion.device import device_name
from emotion.errors import quiet_library_warnings, user_errors_exit
from emotion.io import write_json
from emotion.models import Ensemble
from emotion.reporting.figures import plot_confusion_matrix
from emotion.reporting.record import command_line, run_record, split_metrics
from emotion.runinfo import git_commit
from emotion.training.module import EmotionClassifier

__all__ = ["evaluate", "main"]

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate ``cfg.ckpt_path`` (one path, or a list whose members' probabilities are averaged)
    on ``cfg.split`` with ``cfg.tta``; write ``metrics.json`` and a plot."""
    check_config(cfg, EVAL_RULES)
    start = time.perf_counter()
    pl.seed_everything(cfg.seed, workers=True)
    paths = [str(p) for p in cfg.ckpt_path] if OmegaConf.is_list(cfg.ckpt_path) else [str(cfg.ckpt_path)]
    members = [load_model(p, device="cpu") for p in paths]  # weights only; Lightning moves them
    model, sizes = EmotionClassifier.from_trained(members[0]), [m.hparams.input_size for m in members]
    if len(members) > 1:
        model.model = Ensemble([m.model for m in members], sizes)
    model.set_tta(cfg.tta)
    # The data must reach each model at the size it was trained on (an ensemble resizes for its members).
    dm = instantiate(cfg.data, image_size=max(sizes), augment=None)
    trainer: pl.Trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    run = trainer.validate if cfg.split == "val" else trainer.test
    run(model, datamodule=dm, verbose=False)
    names = model.hparams.class_names
    archs = [m.hparams.arch for m in members]
    results = run_record(
        {cfg.split: split_metrics(model.confusion[cfg.split], names)},
        arch=archs[0] if len(archs) == 1 else f"ensemble of {len(archs)}: {', '.join(archs)}",
        params=sum(p.numel() for p in model.model.parameters()), tta=cfg.tta,
        checkpoint=str(Path(paths[0]).resolve()) if len(paths) == 1 else [str(Path(p).resolve()) for p in paths],
        started=start, device=device_name(cfg.trainer.get("accelerator")), commit=git_commit(),
        command=command_line("emotion.evaluate", sys.argv[1:]), data_root=str(dm.root),
        skipped_images=dm.skipped, skipped_classes=dm.skipped_classes)
    out = Path(cfg.paths.output_dir)
    write_json(out / "metrics.json", results)
    acc = results[cfg.split]["acc"]
    source = locate_source(dm.root)
    what = f"{source.name} ({results[cfg.split]['n']} faces)" if is_test_set_folder(source) else SPLIT_NAMES[cfg.split]
    plot_confusion_matrix(results[cfg.split]["confusion_matrix"], names, out / "confusion_matrix.png",
                          title=f"{results['arch']} {what} acc {acc:.2%} (tta={cfg.tta})")
    if dm.skipped_classes:
        print(f"skipped class folders with no FER2013 counterpart: {dm.skipped_classes} "
              "(name them in data.label_map to keep them)")
    print(f"{what} accuracy {acc:.4f}  macro-F1 {results[cfg.split]['f1_macro']:.4f}  "
          f"(tta={cfg.tta}) -> {out / 'metrics.json'}")
    return results


@hydra.main(version_base="1.3", config_path=str(config.CONFIG_DIR), config_name="eval")
def main(cfg: DictConfig) -> float:
    """Hydra entry point; returns the accuracy."""
    quiet_library_warnings()
    return user_errors_exit(lambda: evaluate(cfg))[cfg.split]["acc"]


if __name__ == "__main__":
    main()
