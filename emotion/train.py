"""Training entry point: ``python -m emotion.train [hydra overrides]``, a thin ``@hydra.main`` over
:func:`emotion.training.run.train`, which holds the steps (and is what to call from Python)."""

from __future__ import annotations

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from emotion import config  # noqa: F401  (registers the config resolvers)
from emotion.errors import quiet_library_warnings, user_errors_exit
from emotion.reporting.record import command_line
from emotion.training.cluster import run_dir_override
from emotion.training.run import TrainingRun, TrainResult, build, evaluate_best, fit, train, write_record

__all__ = ["train", "TrainResult", "TrainingRun", "build", "fit", "evaluate_best", "write_record", "main", "hydra_main"]

log = logging.getLogger(__name__)


def _command() -> str:
    """The command that reproduces this run: a multirun job's own overrides, not the sweep's command
    line, and not how an interrupted run was resumed."""
    args = sys.argv[1:]
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        args = [o for o in HydraConfig.get().overrides.task if not o.startswith("hparams_search=")]
    resumed = [a for a in args if a.startswith("hydra.run.dir=")] if "ckpt_path=last" in args else []
    return command_line("emotion.train", [a for a in args if a != "ckpt_path=last" and a not in resumed])


@hydra.main(version_base="1.3", config_path=str(config.CONFIG_DIR), config_name="train")
def hydra_main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the optimised metric for sweepers."""
    quiet_library_warnings()
    metrics = user_errors_exit(lambda: train(cfg, command=_command())).metrics
    value = metrics.get(cfg.get("optimized_metric"))
    if value is None and cfg.get("optimized_metric"):
        # A sweeper (Optuna) needs a number: say why it gets none instead of failing later, vaguely.
        log.warning("optimized_metric=%s was not logged (logged: %s); returning None",
                    cfg.optimized_metric, ", ".join(sorted(metrics)) or "nothing")
    return None if value is None else float(value)


def main() -> None:
    """``python -m emotion.train``. With ``ckpt_path=last`` alone, first find the interrupted run
    of the same command, and continue in its folder. Processes started together by torchrun or srun
    share one run folder, named by the launch (:func:`emotion.training.cluster.run_dir_override`)."""
    override = user_errors_exit(lambda: run_dir_override(sys.argv[1:]))
    if override is not None:
        sys.argv.append(override)  # @hydra.main reads its overrides from sys.argv, and only there
    hydra_main()


if __name__ == "__main__":
    main()
