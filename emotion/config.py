"""OmegaConf resolvers used by ``conf/`` (registered on import) and where the configs live."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from omegaconf import OmegaConf

__all__ = ["CONFIG_DIR", "ASSETS_DIR", "auto_precision", "choose_precision", "cpu_has_native_bf16", "wandb_offline"]

_PACKAGE = Path(__file__).resolve().parent
#: Hydra's config folder: ``conf/`` beside the package in a source checkout (where users edit it),
#: ``emotion/conf/`` in an installed wheel (see pyproject.toml).
CONFIG_DIR = _PACKAGE / "conf" if (_PACKAGE / "conf").is_dir() else _PACKAGE.parent / "conf"
ASSETS_DIR = _PACKAGE / "assets"


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX-512 BF16 or AMX). Without it oneDNN emulates
    bf16, which is slower than fp32, so bf16 autocast would not pay."""
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def choose_precision(accelerator: str = "auto") -> tuple[str, str]:
    """The Lightning precision for ``accelerator`` (``auto``, ``gpu``/``cuda`` or ``cpu``), and why.

    ``bf16-mixed`` where the device computes bf16 natively (a recent CUDA GPU; a CPU with AVX-512
    BF16 or AMX, where it trains 1.6-3.5x faster), else full 32-bit precision.
    """
    on_gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    if on_gpu:
        if torch.cuda.is_bf16_supported():
            return "bf16-mixed", "this GPU supports bf16"
        return "32-true", "this GPU has no bf16 support"
    if cpu_has_native_bf16():
        return "bf16-mixed", "this CPU has native bf16 (AVX-512 BF16 or AMX)"
    return "32-true", "this CPU has no native bf16 (AVX-512 BF16 or AMX), where bf16 would be emulated and slower"


def auto_precision(accelerator: str = "auto") -> str:
    """Resolver ``${auto_precision:cpu}``: the precision :func:`choose_precision` picks."""
    return choose_precision(accelerator)[0]


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


def _default_cache_dir() -> str:
    from emotion.data.cache import default_cache_dir

    return default_cache_dir()


for _name, _fn in (("auto_precision", auto_precision), ("wandb_offline", wandb_offline), ("asset", _asset),
                   ("default_cache_dir", _default_cache_dir)):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _fn)
