"""Runs started by a cluster or a process launcher: SLURM (sbatch/srun, submitit) and torchrun.

Two things differ from a run started by hand. Several processes start the same command, so they
must agree on one run folder without talking to each other: the launcher's job id names it, not
the clock. And SLURM may requeue a job (time limit, preemption): it starts again in that same
folder and should go on from its checkpoint instead of starting over.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from emotion.errors import EmotionError
from emotion.training.resume import LAST_CKPT

__all__ = ["shared_run_name", "requeued_checkpoint"]


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
