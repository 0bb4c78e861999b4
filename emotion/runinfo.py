"""Facts about the running environment recorded with every result."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import torch

__all__ = ["git_commit", "device_name"]


def git_commit() -> str:
    """The project's current commit (with ``-dirty`` if the tree has changes), or ``unknown``."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def device_name(accelerator: str | None = None) -> str:
    """A readable name of the device that ran: the GPU's name, or the CPU with its core count."""
    if accelerator != "cpu" and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU {platform.processor() or platform.machine()} ({os.cpu_count()} cores)"
