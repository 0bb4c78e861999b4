"""The built wheel, installed (not editable) in a fresh virtual environment, trains from another folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from tests.helpers import ROOT, SAMPLE_PHOTO, SHARED_PHOTOS

PIP_ENV = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
PIP_ENV.pop("PIP_FIND_LINKS", None)


@pytest.mark.slow  # 14 s: the default suite's budget (#32); CI runs the slow suite too
def test_installed_wheel_composes_configs_and_trains_the_sample(tmp_path):
    dist = tmp_path / "dist"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(dist), str(ROOT)], capture_output=True, text=True, env=PIP_ENV, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = dist.glob("emotion-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "emotion/conf/train.yaml" in names and "emotion/conf/experiment/vgg_cpu.yaml" in names
    assert any(n.startswith("emotion/assets/fer2013_sample/") for n in names)

    # A fresh environment that sees this one's packages (torch, Lightning, …) through a path entry,
    # but not its editable install of emotion: .pth files are only run in site directories.
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    (site / "parent_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                       capture_output=True, text=True, env=PIP_ENV, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "WANDB_SILENT": "true", "PYTHONWARNINGS": "ignore", "EMOTION_CACHE_DIR": str(tmp_path / "c")}
    env.pop("PYTHONPATH", None)
    where = "import emotion, emotion.config as c; print(emotion.__file__); print(c.CONFIG_DIR)"
    r = subprocess.run([str(py), "-c", where], cwd=elsewhere, capture_output=True, text=True, env=env, timeout=120)
    module_file, config_dir = r.stdout.split()
    assert str(site) in module_file and config_dir == str(site / "emotion" / "conf"), r.stdout + r.stderr
    script = env_dir / "bin" / "emotion-train"
    r = subprocess.run([str(script), "data=fer2013_sample", "model=mini_xception", "trainer=cpu", "logger=csv",
                        "trainer.fast_dev_run=true", "data.num_workers=0", "callbacks.progress_bar=null",
                        "trainer.enable_progress_bar=false"], cwd=elsewhere, capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert list((elsewhere / "outputs" / "train" / "runs").glob("*/metrics.json"))


def _torch_closure() -> set[str]:
    """torch, torchvision and everything they need, as installed here: what a user brings before `pip install`."""
    from importlib.metadata import distribution

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    todo = ["torch", "torchvision"]
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        try:
            dist = distribution(name)
        except Exception:  # noqa: BLE001 - a dependency whose marker excludes this machine
            continue
        seen.add(name)
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def _link_distributions(names: set[str], into: Path) -> None:
    """Symlink the installed files' top-level entries of the distributions ``names`` into ``into``."""
    from importlib.metadata import distribution

    into.mkdir()
    for name in names:
        dist = distribution(name)
        base = Path(dist.locate_file(""))
        for top in {Path(str(f)).parts[0] for f in dist.files or []}:
            src, dst = base / top, into / top
            if src.exists() and not dst.exists() and not top.startswith(".."):
                dst.symlink_to(src)


@pytest.mark.slow  # installs the wheel's dependencies from the registry into a fresh environment: minutes
def test_plain_pip_install_of_the_wheel_predicts_and_trains(tmp_path):
    """#25: `pip install emotion-….whl` in a clean environment that has torch and torchvision and
    nothing else, then the README's predict and train-sample commands."""
    dist = tmp_path / "dist"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(dist), str(ROOT)], capture_output=True, text=True, env=PIP_ENV, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = dist.glob("emotion-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    torch_only = tmp_path / "torch_only"
    _link_distributions(_torch_closure(), torch_only)
    (site / "torch_only.pth").write_text(f"{torch_only}\n")
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", str(wheel)],
                       capture_output=True, text=True, env=PIP_ENV, timeout=1500)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "ERROR" not in r.stderr, r.stderr[-3000:]
    probe = subprocess.run([str(py), "-c", "import facenet_pytorch"], capture_output=True, text=True)
    assert probe.returncode != 0  # the wheel does not need it, and did not bring it

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "WANDB_SILENT": "true", "WANDB_MODE": "offline", "EMOTION_CACHE_DIR": str(tmp_path / "c")}
    env.pop("PYTHONPATH", None)
    photo = SHARED_PHOTOS / "group_of_six.jpg"
    photo = photo if photo.is_file() else SAMPLE_PHOTO
    r = subprocess.run([str(env_dir / "bin" / "emotion-predict"), str(photo), "--out", "preds"], cwd=elsewhere,
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    doc = json.loads((elsewhere / "preds" / "predictions.json").read_text())
    assert len(doc["results"][0]["faces"]) == 6 and (elsewhere / "preds" / f"{photo.stem}.png").is_file()
    r = subprocess.run([str(env_dir / "bin" / "emotion-train"), "data=fer2013_sample", "model=mini_xception",
                        "trainer=cpu", "trainer.max_epochs=1", "logger=csv", "data.num_workers=0"],
                       cwd=elsewhere, capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert list((elsewhere / "outputs" / "train" / "runs").glob("*/metrics.json"))
