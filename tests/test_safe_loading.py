"""Checkpoints that would run code when unpickled, and ones cut short, through every door that loads
one: the Python API, and the predict, evaluate, export and train CLIs. The payload would create a
file; the tests check it never appears."""

from __future__ import annotations

import os
import pathlib
import subprocess
from pathlib import Path

import pytest
import torch

from emotion import EmotionClassifier, load_model
from emotion.checkpoint import read_checkpoint
from emotion.errors import EmotionError
from emotion.io import atomic_path
from emotion.training.resume import AtomicCheckpointIO
from tests.helpers import ROOT, run_cli


class _Payload:
    """Unpickling this calls ``Path(marker).touch()``: any code could stand there."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def make_evil_checkpoint(tiny_checkpoint: Path, folder: Path, fmt: str = "zip") -> tuple[Path, Path]:
    """A real checkpoint with a payload added, in torch's zip format or its older plain-pickle one."""
    marker = folder / "payload_ran"
    ckpt = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)
    ckpt["hyper_parameters"]["extra"] = _Payload(marker)
    path = folder / "evil.ckpt"
    torch.save(ckpt, path, _use_new_zipfile_serialization=fmt == "zip")
    return path, marker


@pytest.fixture(params=["zip", "legacy"])
def evil_checkpoint(request, tiny_checkpoint, tmp_path) -> tuple[Path, Path]:
    return make_evil_checkpoint(tiny_checkpoint, tmp_path, request.param)


def test_api_refuses_code_in_checkpoints(evil_checkpoint):
    path, marker = evil_checkpoint
    for load in (read_checkpoint, load_model, EmotionClassifier.load_from_checkpoint):
        with pytest.raises(EmotionError, match="refused to load .*could run code"):
            load(path)
    assert not marker.exists()


def _cli(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_cli(module, *args, cwd=cwd, timeout=300)


@pytest.mark.slow  # five CLI processes; the loaders' own refusal is in the default suite
def test_clis_refuse_code_in_checkpoints(tiny_checkpoint, tmp_path):
    path, marker = make_evil_checkpoint(tiny_checkpoint, tmp_path)
    photo = ROOT / "tests" / "assets" / "sample_faces.jpg"
    (tmp_path / "metrics.json").write_text("{}")
    runs = {
        "emotion.predict": [str(photo), "--checkpoint", str(path), "--out", str(tmp_path / "pred")],
        "emotion.evaluate": [f"ckpt_path={path}", "data=fer2013_sample", f"hydra.run.dir={tmp_path / 'eval'}"],
        "emotion.export": [str(path), str(tmp_path / "export"), "--train-metrics", str(tmp_path / "metrics.json")],
        "emotion.train": [f"ckpt_path={path}", "data=fer2013_sample", "logger=none",
                          f"hydra.run.dir={tmp_path / 'train'}"],
    }
    for module, args in runs.items():
        r = _cli(module, *args, cwd=tmp_path)
        assert r.returncode == 2, (module, r.stderr[-2000:])
        assert "refused to load" in r.stderr and "could run code" in r.stderr and "Traceback" not in r.stderr, module
    assert not marker.exists()
    assert not (tmp_path / "pred").exists() and not (tmp_path / "export").exists()  # nothing half-written


@pytest.mark.parametrize("keep", [0, 10, 1000, 0.5, 0.99])
def test_truncated_checkpoint_gives_one_clear_error(tiny_checkpoint, tmp_path, keep):
    data = tiny_checkpoint.read_bytes()
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    for load in (read_checkpoint, load_model, EmotionClassifier.load_from_checkpoint):
        with pytest.raises(EmotionError, match="not a readable checkpoint|not an emotion checkpoint"):
            load(cut)


def test_checkpoint_write_killed_midway_leaves_the_old_one(tiny_checkpoint, tmp_path, monkeypatch):
    """A failure (or kill) during ``torch.save`` must leave the previous checkpoint whole and no
    temporary file behind."""
    target = tmp_path / "last.ckpt"
    target.write_bytes(tiny_checkpoint.read_bytes())
    ckpt = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)

    def dies_halfway(obj, f, *a, **k):
        Path(f).write_bytes(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(OSError, match="disk full"):
        AtomicCheckpointIO().save_checkpoint(ckpt, target)
    monkeypatch.undo()
    assert target.read_bytes() == tiny_checkpoint.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
    AtomicCheckpointIO().save_checkpoint(ckpt, target)  # and a whole write replaces it
    assert read_checkpoint(target)["global_step"] == ckpt["global_step"]


def test_atomic_path_keeps_umask_permissions(tmp_path):
    with atomic_path(tmp_path / "f.txt") as tmp:
        tmp.write_text("x")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o666 & ~umask
