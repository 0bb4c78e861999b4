"""Shared fixtures: config composition into tmp_path, the bundled sample, and ../shared when present."""

from __future__ import annotations

import os
import struct
import time
import zlib
from pathlib import Path

import pytest
import torch
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


def compose_cfg(tmp_path: Path, overrides: list[str] = (), config_name: str = "train",
                resolve: bool = True) -> DictConfig:
    """Compose a config as the CLI would, writing every output under ``tmp_path``; ``resolve``
    checks that every interpolation resolves, as in a real run (and replaces them by their values)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path)
        cfg.paths.log_dir = str(tmp_path)
        if "data" in cfg:
            cfg.data.cache_dir = str(tmp_path / "cache")
    if resolve:
        OmegaConf.resolve(cfg)
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


def png_header(width: int, height: int, idat: bytes | None = None, color: int = 2) -> bytes:
    """A PNG that declares ``width``×``height`` and holds ``idat`` (default: almost nothing), as a
    decompression bomb does."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    data = zlib.compress(b"\0" * 16) if idat is None else idat
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def one_cpu_thread():
    """One intra-op thread for a module: MTCNN runs many small convolutions, and on a busy 2-core
    machine (CI, a training job) two threads spin against each other and run 10-20× slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def survivors(pgid: int, grace_s: float = 10.0) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``, after giving them ``grace_s`` to die."""
    deadline = time.monotonic() + grace_s
    while True:
        alive = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            state, group = fields[0], int(fields[2])
            if group == pgid and state != "Z":
                alive.append(int(stat.parent.name))
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)
