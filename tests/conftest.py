"""Shared fixtures: config composition into tmp_path, the bundled sample, and ../shared when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf, open_dict

from emotion.config import ASSETS_DIR, CONFIG_DIR

os.environ.setdefault("WANDB_SILENT", "true")

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SHARED_FER = SHARED / "data" / "fer2013"
SHARED_PHOTOS = SHARED / "photos"
SAMPLE_ROOT = ASSETS_DIR / "fer2013_sample"

needs_shared_fer = pytest.mark.skipif(not SHARED_FER.is_dir(), reason="../shared/data/fer2013 not present")
needs_shared_photos = pytest.mark.skipif(not SHARED_PHOTOS.is_dir(), reason="../shared/photos not present")


def compose_cfg(tmp_path: Path, overrides: list[str] = (), config_name: str = "train") -> DictConfig:
    """Compose a config as the CLI would, writing every output under ``tmp_path``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path)
        cfg.paths.log_dir = str(tmp_path)
        if "data" in cfg:
            cfg.data.cache_dir = str(tmp_path / "cache")
    OmegaConf.resolve(cfg)  # everything must resolve, as in a real run
    return cfg


def quick_overrides(*extra: str) -> list[str]:
    """A CPU run on the bundled sample with no progress bar and CSV logging."""
    return ["data=fer2013_sample", "data.num_workers=0", "trainer=cpu", "logger=csv",
            "callbacks.progress_bar=null", "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false", *extra]


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A mini_xception trained for 2 epochs on the sample: the best-on-val checkpoint's path."""
    from emotion.train import train

    out = tmp_path_factory.mktemp("tiny_run")
    cfg = compose_cfg(out, quick_overrides("model=mini_xception", "trainer.max_epochs=2"))
    _, objects = train(cfg)
    return Path(objects["results"]["checkpoint"])
