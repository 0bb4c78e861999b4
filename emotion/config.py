"""OmegaConf resolvers used by ``conf/`` (registered on import) and where the configs live."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from omegaconf import OmegaConf

__all__ = ["CONFIG_DIR", "ASSETS_DIR", "auto_precision", "wandb_offline"]

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"
ASSETS_DIR = Path(__file__).resolve().parent / "assets"


def auto_precision() -> str:
    """``bf16-mixed`` where a CUDA GPU supports it, else full 32-bit precision."""
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"


def wandb_offline() -> bool:
    """Run W&B offline unless an API key is configured (env var or ``~/.netrc``)."""
    if os.environ.get("WANDB_MODE", "").lower() in ("online", "run"):
        return False
    if os.environ.get("WANDB_API_KEY"):
        return False
    netrc = Path.home() / ".netrc"
    return not (netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore"))


def _asset(name: str) -> str:
    return str(ASSETS_DIR / name)


for _name, _fn in (("auto_precision", auto_precision), ("wandb_offline", wandb_offline), ("asset", _asset)):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _fn)
