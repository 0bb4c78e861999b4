"""Configuration: where the configs live, the OmegaConf resolvers ``conf/`` uses (registered on import),
and, in :mod:`emotion.config.rules`, the typed rules every config value is checked against (one line per
bad value) before a run starts."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

from emotion.device import choose_precision
from emotion.resources import ASSETS_DIR

__all__ = ["CONFIG_DIR", "ASSETS_DIR", "auto_precision", "wandb_offline"]

_PACKAGE = Path(__file__).resolve().parents[1]  # emotion/
#: Hydra's config folder: ``conf/`` beside the package in a source checkout (where users edit it),
#: ``emotion/conf/`` in an installed wheel (see pyproject.toml).
CONFIG_DIR = _PACKAGE / "conf" if (_PACKAGE / "conf").is_dir() else _PACKAGE.parent / "conf"


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


def _results(name: str) -> str:
    """A file the repository's experiments wrote (``experiments/results/``): a recipe's committed inputs,
    such as a student's soft labels. Not part of the wheel: use a checkout for those recipes."""
    return str(_PACKAGE.parent / "experiments" / "results" / name)


def _default_cache_dir() -> str:
    from emotion.data.sources.cache import default_cache_dir

    return default_cache_dir()


for _name, _fn in (("auto_precision", auto_precision), ("wandb_offline", wandb_offline), ("asset", _asset),
                   ("results", _results), ("default_cache_dir", _default_cache_dir)):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _fn)
