"""Runs that a cluster starts: torchrun processes sharing one run folder and counting every face
once, a requeued SLURM job going on from its checkpoint, and sweeps through the real submitit
launcher (``hydra/launcher=local``: pickled jobs in their own processes, results collected)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from emotion.checkpoint import load_model
from emotion.config import ASSETS_DIR, CONFIG_DIR
from emotion.config.rules import TRAIN_RULES, check_config
from emotion.data import FER2013DataModule
from emotion.errors import EmotionError
from emotion.models import predict_proba
from emotion.training.cluster import requeued_checkpoint, shared_run_name
from emotion.training.resume import LAST_CKPT
from emotion.training.sweeps import job_dirs
from tests.helpers import FAST, FAULTS, ROOT, compose_cfg, run_cli

QUIET = ["logger=csv", "callbacks.progress_bar=null", "trainer.enable_progress_bar=false",
         "trainer.enable_model_summary=false", "data.num_workers=0"]


def test_processes_of_one_launch_agree_on_a_folder():
    assert shared_run_name({}) is None
    assert shared_run_name({"TORCHELASTIC_RUN_ID": "abc", "WORLD_SIZE": "2"}) == "torchrun_abc"
    assert shared_run_name({"TORCHELASTIC_RUN_ID": "abc", "WORLD_SIZE": "1"}) is None
    assert shared_run_name({"SLURM_JOB_ID": "77", "SLURM_NTASKS": "8"}) == "slurm_77"
    assert shared_run_name({"SLURM_JOB_ID": "77", "SLURM_NTASKS": "1"}) is None  # one task: its own folder
    with pytest.raises(EmotionError, match="--standalone"):
        shared_run_name({"TORCHELASTIC_RUN_ID": "none", "WORLD_SIZE": "2"})


def test_only_a_requeued_slurm_job_goes_on_from_its_checkpoint(tmp_path):
    (tmp_path / LAST_CKPT).parent.mkdir()
    (tmp_path / LAST_CKPT).write_bytes(b"x")
    assert requeued_checkpoint(tmp_path, {}) is None
    assert requeued_checkpoint(tmp_path, {"SLURM_JOB_ID": "5", "SLURM_RESTART_COUNT": "0"}) is None
    assert requeued_checkpoint(tmp_path, {"SLURM_JOB_ID": "5", "SLURM_RESTART_COUNT": "1"}) == tmp_path / LAST_CKPT
    hpc = tmp_path / "hpc_ckpt_1.ckpt"  # Lightning's save at SLURM's warning signal: newer, so preferred
    hpc.write_bytes(b"x")
    os.utime(hpc, (os.path.getmtime(tmp_path / LAST_CKPT) + 10,) * 2)
    assert requeued_checkpoint(tmp_path, {"SLURM_JOB_ID": "5", "SLURM_RESTART_COUNT": "2"}) == hpc
    assert requeued_checkpoint(tmp_path / "empty", {"SLURM_JOB_ID": "5", "SLURM_RESTART_COUNT": "1"}) is None


def _odd_sample(root: Path) -> Path:
    """The bundled sample less one PublicTest and one PrivateTest face: 69 each, which two
    processes cannot split evenly, so a padding sampler would count one face twice."""
    shutil.copytree(ASSETS_DIR / "fer2013_sample", root)
    for prefix in ("PublicTest_", "PrivateTest_"):
        next((root / "test").rglob(f"{prefix}*.jpg")).unlink()
    return root


def _check_two_process_run(run: Path, data: Path, tmp_path: Path) -> None:
    m = json.loads((run / "metrics.json").read_text())
    assert m["val"]["n"] == 69 and m["test"]["n"] == 69
    assert sum(map(sum, m["test"]["confusion_matrix"])) == 69
    # Both processes' shares add up to what one process scores with the same checkpoint.
    model = load_model(m["checkpoint"]).eval()
    dm = FER2013DataModule(root=str(data), cache_dir=str(tmp_path / "cache"), num_workers=0,
                           image_size=model.hparams.input_size)
    correct = 0
    with torch.no_grad():
        for x, y in dm.test_dataloader():
            correct += int((predict_proba(model, x, m["tta"]).argmax(1) == y).sum())
    assert abs(correct - round(m["test"]["acc"] * 69)) <= 1  # a borderline face may tip with the batch split


def _ddp_args(data: Path, tmp_path: Path) -> list[str]:
    return ["trainer=ddp", "trainer.accelerator=cpu", "trainer.precision=32-true", "trainer.max_epochs=1",
            "trainer.limit_train_batches=2", "model=mini_xception", "data.batch_size=16", f"data.root={data}",
            f"data.cache_dir={tmp_path / 'cache'}", f"paths.log_dir={tmp_path / 'logs'}", *QUIET]


@pytest.mark.slow  # 14 s; tests/test_train.py::test_ddp_on_two_cpu_processes keeps two processes in the default suite
def test_torchrun_two_processes_share_a_folder_and_count_each_face_once(tmp_path):
    data = _odd_sample(tmp_path / "data")
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "emotion.train", *_ddp_args(data, tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "train" / "runs").iterdir()  # one folder for both processes
    assert run.name.startswith("torchrun_")
    assert "process 1 of 2, joined by TorchElasticEnvironment" in r.stdout + r.stderr
    _check_two_process_run(run, data, tmp_path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two DDP processes: about 40 s on 2 cores
def test_srun_tasks_are_joined_by_lightnings_slurm_environment(tmp_path):
    """What ``srun`` gives each task of a 2-task job on one node (no cluster here): Lightning must
    take the ranks from SLURM's variables, and both tasks must write one run, named by the job."""
    data = _odd_sample(tmp_path / "data")
    job = {"SLURM_JOB_ID": "8123", "SLURM_JOB_NAME": "emotion-train", "SLURM_NTASKS": "2",
           "SLURM_NTASKS_PER_NODE": "2", "SLURM_NNODES": "1", "SLURM_JOB_NUM_NODES": "1", "SLURM_NODEID": "0",
           "SLURM_NODELIST": "localhost", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
    tasks = [subprocess.Popen([sys.executable, "-m", "emotion.train", *_ddp_args(data, tmp_path)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, **job, "SLURM_PROCID": str(i), "SLURM_LOCALID": str(i),
                                   "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"})
             for i in range(2)]
    outs = [t.communicate(timeout=600) for t in tasks]
    assert [t.returncode for t in tasks] == [0, 0], outs[0][1][-3000:] + outs[1][1][-3000:]
    logs = "".join(out + err for out, err in outs)
    assert "process 0 of 2, joined by SLURMEnvironment" in logs and "process 1 of 2, joined by SLURMEnvironment" in logs
    (run,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    assert run.name == "slurm_8123"
    _check_two_process_run(run, data, tmp_path)


@pytest.mark.slow  # 16 s of resumed training
def test_a_requeued_slurm_job_goes_on_in_its_own_folder(tmp_path):
    run = tmp_path / "slurm_job"
    args = ["model=mini_xception", "trainer=cpu", "trainer.max_epochs=2", "trainer.limit_train_batches=2",
            "data=fer2013_sample", "data.batch_size=16", f"data.cache_dir={tmp_path / 'cache'}", *QUIET,
            f"hydra.run.dir={run}"]
    # The first start is stopped (SLURM's kill at the time limit) as the second epoch validates.
    killed = subprocess.run([sys.executable, str(FAULTS), "val", "1", "SIGKILL", "--",
                             *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert (run / LAST_CKPT).is_file() and not (run / "metrics.json").exists()

    env = {**os.environ, "SLURM_JOB_ID": "4242", "SLURM_RESTART_COUNT": "1"}
    r = subprocess.run([sys.executable, "-m", "emotion.train", *args], cwd=ROOT, capture_output=True, text=True,
                       timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "SLURM requeued this job: going on from" in r.stdout + r.stderr
    m = json.loads((run / "metrics.json").read_text())
    assert m["epochs"] == 2 and [e["epoch"] for e in m["history"]] == [0, 1]


@pytest.mark.slow  # a whole Hydra multirun through submitit's local launcher
def test_multirun_through_the_submitit_launcher(tmp_path):
    sweep = tmp_path / "multirun"
    r = run_cli("emotion.train", "-m", "hydra/launcher=local", "model=mini_xception", "model.lr=0.01,0.05",
                "logger=csv", *FAST, f"data.cache_dir={tmp_path / 'cache'}", f"hydra.sweep.dir={sweep}")
    assert r.returncode == 0, r.stderr[-3000:]
    jobs = job_dirs(sweep)
    assert [OmegaConf.load(j / ".hydra" / "overrides.yaml")[1] for j in jobs] == ["model.lr=0.01", "model.lr=0.05"]
    assert all(json.loads((j / "metrics.json").read_text())["test"]["n"] == 16 for j in jobs)
    # Each job ran as its own submitit job, a process of its own (local job id = its pid): a pickled
    # call, its own log, its pickled result.
    job_ids = {p.parent.name for p in sweep.glob(".submitit/*/*_result.pkl")}
    assert len(job_ids) == 2 and all(i.isdigit() for i in job_ids)
    assert all(list(sweep.glob(f".submitit/{i}/{i}_submitted.pkl")) for i in job_ids)


@pytest.mark.slow  # two trials in submitit jobs, one after the other: about a minute on 2 cores
def test_optuna_sweep_through_the_submitit_launcher(tmp_path):
    import optuna

    sweep = tmp_path / "study"
    r = run_cli("emotion.train", "-m", "hparams_search=fer_optuna", "hydra/launcher=local",
                "hydra.sweeper.n_trials=2", "model=mini_xception", "logger=csv", *FAST,
                f"data.cache_dir={tmp_path / 'cache'}", f"hydra.sweep.dir={sweep}")
    assert r.returncode == 0, r.stderr[-3000:]
    study = optuna.load_study(study_name="fer_optuna", storage=f"sqlite:///{sweep}/optuna.db")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    values = [json.loads((j / "metrics.json").read_text())["val_acc_best"] for j in job_dirs(sweep)]
    assert [t.value for t in study.trials] == pytest.approx(values)
    assert len(list(sweep.glob(".submitit/*/*_result.pkl"))) == 2
    best = OmegaConf.to_container(OmegaConf.load(sweep / "best_trial.yaml"))
    assert best["value"] == pytest.approx(study.best_value)


def _script_overrides(script: Path, env: dict[str, str]) -> list[str]:
    """The overrides a shell script passes to ``emotion.train``, its variables filled in from ``env``."""
    text = script.read_text().replace("\\\n", " ")
    line = next(ln for ln in text.splitlines() if "-m emotion.train" in ln)
    line = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m[1], m[2]), line.split("-m emotion.train", 1)[1])
    line = re.sub(r"\$\{?(\w+)\}?", lambda m: env[m[1]] if m[1] in env else m[0], line)
    return [a for a in shlex.split(line) if a not in ("$@", "-m")]


def test_slurm_scripts_compose_with_the_shipped_configs(tmp_path):
    job = {"SLURM_NTASKS_PER_NODE": "4", "SLURM_JOB_NUM_NODES": "2", "SLURM_JOB_ID": "99"}
    args = _script_overrides(ROOT / "experiments" / "slurm" / "train_multinode.sbatch", job)
    assert "hydra.run.dir=outputs/train/runs/slurm_99" in args  # a requeued job keeps its id, so its folder
    args = [a.replace("accelerator=gpu", "accelerator=cpu") for a in args if not a.startswith("hydra.")]
    cfg = compose_cfg(tmp_path, args)  # composes on a machine without a GPU
    check_config(cfg, TRAIN_RULES)
    assert (cfg.trainer.strategy, cfg.trainer.devices, cfg.trainer.num_nodes) == ("ddp", 4, 2)
    assert cfg.model.arch == "vgg_slim"  # the recipe's model, on the DDP trainer

    args = _script_overrides(ROOT / "experiments" / "slurm" / "sweep.sh", {}) + ["hydra.launcher.partition=gpu"]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        hydra_cfg = compose("train", overrides=args, return_hydra_config=True).hydra
    assert hydra_cfg.launcher._target_.endswith("SlurmLauncher") and hydra_cfg.launcher.partition == "gpu"
    assert hydra_cfg.launcher.max_num_timeout > 0 and hydra_cfg.launcher.gpus_per_node == 1
    assert hydra_cfg.sweeper._target_.endswith("OptunaSweeper") and hydra_cfg.sweeper.n_jobs == 4
