"""The built wheel, installed (not editable) in a fresh virtual environment, trains from another folder."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

from tests.conftest import ROOT

PIP_ENV = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
PIP_ENV.pop("PIP_FIND_LINKS", None)


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
