"""Runs started by a cluster or a process launcher: SLURM (sbatch/srun, submitit) and torchrun.

Two things differ from a run started by hand. Several processes start the same command, so they
must agree on one run folder without talking to each other: the launcher's job id names it, not
the clock. And SLURM may requeue a job (time limit, preemption): it starts again in that same
folder and should go on from its checkpoint instead of starting over.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping, Sequence

from emotion.errors import EmotionError, first_line
from emotion.training.resume import LAST_CKPT, find_interrupted_run, job_overrides, names_run_dir, wants_resume

__all__ = ["shared_run_name", "requeued_checkpoint", "run_dir_override"]


def _int(env: Mapping[str, str], key: str) -> int:
    try:
        return int(env.get(key, "0"))
    except ValueError:
        return 0


def shared_run_name(env: Mapping[str, str] = os.environ) -> str | None:
    """The run folder's name that every process of a multi-process launch computes alike, or
    ``None`` for a single process (its folder is time-stamped as usual).

    Raises:
        EmotionError: torchrun without a rendezvous id, whose processes could not agree on a folder.
    """
    if "TORCHELASTIC_RUN_ID" in env and _int(env, "WORLD_SIZE") > 1:
        run_id = env["TORCHELASTIC_RUN_ID"]
        if run_id in ("", "none"):
            raise EmotionError("torchrun started these processes without a shared run id, so they cannot agree on "
                               "one run folder: add --standalone (one machine) or --rdzv-id=<id>, or give every "
                               "process the same hydra.run.dir=...")
        return f"torchrun_{run_id}"
    if "SLURM_JOB_ID" in env and _int(env, "SLURM_NTASKS") > 1:
        # srun started one process per task; a requeued job keeps its id, so it finds its folder again.
        return f"slurm_{env['SLURM_JOB_ID']}"
    return None


def requeued_checkpoint(run_dir: Path, env: Mapping[str, str] = os.environ) -> Path | None:
    """The checkpoint a requeued SLURM job goes on from: the newer of Lightning's auto-requeue save
    (``hpc_ckpt_<n>.ckpt``, written when SLURM signals the time limit) and ``checkpoints/last.ckpt``.
    ``None`` outside SLURM, on a job's first start, or when it had saved nothing yet."""
    if "SLURM_JOB_ID" not in env or _int(env, "SLURM_RESTART_COUNT") < 1:
        return None
    saved = [p for p in [*run_dir.glob("hpc_ckpt_*.ckpt"), run_dir / LAST_CKPT] if p.is_file()]
    return max(saved, key=lambda p: p.stat().st_mtime) if saved else None


def _runs_root(argv: Sequence[str]) -> Path:
    """The folder holding this command's run folders (``hydra.run.dir`` without its time stamp).

    Raises:
        EmotionError: the overrides do not compose (Hydra's message, in one line).
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from emotion.config import CONFIG_DIR

    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose("train", overrides=job_overrides(argv), return_hydra_config=True)
            return Path(cfg.hydra.run.dir).parent
    except (HydraException, OmegaConfBaseException) as e:
        raise EmotionError(f"the overrides {' '.join(job_overrides(argv))} do not compose: {first_line(e)}") from None


def run_dir_override(argv: Sequence[str], env: Mapping[str, str] = os.environ) -> str | None:
    """The ``hydra.run.dir=…`` a training command needs before Hydra starts, or ``None``: the folder
    that every process of a torchrun/srun launch shares (:func:`shared_run_name`), or the interrupted
    run that ``ckpt_path=last`` continues (:func:`~emotion.training.resume.find_interrupted_run`).

    Raises:
        EmotionError: bad overrides, a launch whose processes cannot agree, no run to resume.
    """
    if names_run_dir(argv):
        return None
    shared = shared_run_name(env)
    if shared is not None:
        return f"hydra.run.dir={_runs_root(argv) / shared}"
    if wants_resume(argv):
        run_dir = find_interrupted_run(_runs_root(argv), argv)
        print(f"resuming {run_dir}", file=sys.stderr)
        return f"hydra.run.dir={run_dir}"
    return None
