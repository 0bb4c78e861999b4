"""What the tests share (#32: one home, imported as ``tests.helpers``; fixtures stay in conftest.py): paths to the
sample, the shared data and photos, and the skips when they are absent; config composition into tmp_path; the
CLI runner; crafted files (PNG bomb headers, CK+-style folders); process checks; W&B record reading.
``faults.py`` and ``train_steps.py`` beside this file are scripts the tests run in processes of their own."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Iterator

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf, open_dict
from PIL import Image

from emotion.config import ASSETS_DIR, CONFIG_DIR

os.environ.setdefault("WANDB_SILENT", "true")

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
SHARED_FER = SHARED / "data" / "fer2013"
SHARED_PHOTOS = SHARED / "photos"
#: Six real FER2013 faces pasted on a 672×464 canvas (tests/assets/sample_faces.json says where).
SAMPLE_PHOTO = ROOT / "tests" / "assets" / "sample_faces.jpg"
#: Overrides of a one-batch sweep trial on the bundled sample.
FAST = ["trainer.fast_dev_run=true", "data=fer2013_sample", "data.num_workers=0", "data.batch_size=16",
        "trainer=cpu", "callbacks.progress_bar=null", "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false"]
#: mini_xception's size, the same as the `fer` package's net: pinned here once for every test.
MINI_XCEPTION_PARAMS = 56_951
SAMPLE_ROOT = ASSETS_DIR / "fer2013_sample"
#: The script that runs emotion.train with a fault injected (tests/helpers/faults.py).
FAULTS = Path(__file__).resolve().parent / "faults.py"

needs_shared_fer = pytest.mark.skipif(not SHARED_FER.is_dir(), reason="../shared/data/fer2013 not present")
needs_shared_photos = pytest.mark.skipif(not SHARED_PHOTOS.is_dir(), reason="../shared/photos not present")
needs_bundled = pytest.mark.skipif(not (ASSETS_DIR / "default_model" / "model.json").is_file(),
                                   reason="no bundled model in emotion/assets/default_model")


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


def png_header(width: int, height: int, idat: bytes | None = None, color: int = 2) -> bytes:
    """A PNG that declares ``width``×``height`` and holds ``idat`` (default: almost nothing), as a
    decompression bomb does."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    data = zlib.compress(b"\0" * 16) if idat is None else idat
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


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


def write_ck_style(root: Path) -> Path:
    """A CK+-style folder (anger, sadness, contempt, …) of the sample's real PrivateTest faces,
    blown up to photo size as RGB, RGBA and 16-bit grey PNGs."""
    source = {"anger": ("angry", 2), "sadness": ("sad", 3), "contempt": ("neutral", 2), "happy": ("happy", 1),
              "surprised": ("surprise", 1)}
    for i, (name, (fer_class, n)) in enumerate(source.items()):
        (root / name).mkdir(parents=True)
        for j, path in enumerate(sorted((SAMPLE_ROOT / "test" / fer_class).glob("PrivateTest_*"))[:n]):
            with Image.open(path) as im:
                img = im.convert("L").resize((640, 490))
            mode = ("RGB", "RGBA", "I;16")[(i + j) % 3]
            img.convert(mode).save(root / name / f"S{j:03d}.png")
    return root


def wandb_records(path: Path) -> Iterator:
    """The protobuf records of a W&B offline run file: a 7-byte header, then LevelDB-log blocks
    (32 KiB; each record chunk has a 7-byte header: CRC, length, type FULL/FIRST/MIDDLE/LAST)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, buf = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0:
            continue
        buf = chunk if kind in (1, 2) else buf + chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(buf)
            yield record


def run_cli(module: str, *args: str, timeout: int = 600, cwd: Path = ROOT,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m module args`` in ``cwd`` (default: the repository root), W&B silent, warnings off, the
    checkout importable from anywhere; ``env`` adds or overrides variables (``OMP_NUM_THREADS``, say)."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=_cli_env(env))


def _cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A CLI test's environment: W&B silent, warnings off, the checkout importable from anywhere."""
    return {**os.environ, "WANDB_SILENT": "true", "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(ROOT), **(extra or {})}


def run_clis_at_once(commands: dict, timeout: int = 600, cwd: Path = ROOT) -> dict:
    """Each of ``commands`` (key -> ``(module, [args])``) as :func:`run_cli` runs it, all started together:
    a user-error check spends seconds importing and a moment refusing, so on 2 cores side by side they
    take about half the time of one after another. Returns key -> ``CompletedProcess``."""
    procs = {key: subprocess.Popen([sys.executable, "-m", module, *args], cwd=cwd, env=_cli_env(), text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for key, (module, args) in commands.items()}
    done = {}
    try:
        for key, proc in procs.items():
            out, err = proc.communicate(timeout=timeout)
            done[key] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return done


def pan_clip(image: Path, path: Path, frames: int = 12, fps: float = 10.0, step: int = 4) -> Path:
    """An MJPG clip of ``image`` panning ``step`` px a frame (the faces move, as people do), for video tests
    and benchmarks."""
    import cv2
    import numpy as np

    rgb = np.asarray(Image.open(image).convert("RGB"))
    h, w = rgb.shape[:2]
    canvas = np.pad(rgb, ((0, 0), (0, step * frames), (0, 0)), mode="edge")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for i in range(frames):
        writer.write(cv2.cvtColor(np.ascontiguousarray(canvas[:, i * step:i * step + w]), cv2.COLOR_RGB2BGR))
    writer.release()
    return path
