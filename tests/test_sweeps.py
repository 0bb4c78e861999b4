"""Sweeps for real: a 2-trial Optuna search and a 2-job Hydra multirun (fast_dev_run on the sample,
W&B offline), and the W&B sweep definition turned into commands exactly as ``wandb agent`` does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from emotion.config import CONFIG_DIR
from emotion.report import write_report
from emotion.training.sweeps import job_dirs
from tests.helpers import FAST, FAULTS, ROOT, compose_cfg, run_cli, wandb_records

OPTUNA_CONF = CONFIG_DIR / "hparams_search" / "fer_optuna.yaml"
WANDB_SWEEP = ROOT / "experiments" / "sweeps" / "fer_bayes.yaml"


def _jobs(sweep: Path) -> list[Path]:
    return job_dirs(sweep)


def _overrides(job: Path) -> dict[str, str]:
    return dict(str(o).split("=", 1) for o in OmegaConf.load(job / ".hydra" / "overrides.yaml"))


def test_optuna_sweep_runs_trials_and_reports_the_best(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    sweep = tmp_path / "sweep"
    # model and batch size pinned on the command line (the sweeper then leaves them out of the search)
    # to keep the test quick; lr, weight decay, label smoothing and mixup are searched.
    r = run_cli("emotion.train", "-m", "hparams_search=fer_optuna", "hydra.sweeper.n_trials=2",
                "model=mini_xception", *FAST, f"data.cache_dir={tmp_path / 'cache'}", f"hydra.sweep.dir={sweep}")
    assert r.returncode == 0, r.stderr[-3000:]

    jobs = _jobs(sweep)
    assert [j.name.rpartition("_")[2] for j in jobs] == ["0", "1"]  # <sweep start>_<job>
    metrics = [json.loads((j / "metrics.json").read_text()) for j in jobs]
    assert all(isinstance(m["val_acc_best"], float) and m["test"]["n"] == 16 for m in metrics)
    searched = {"model.lr", "model.weight_decay", "model.label_smoothing", "model.mixup_alpha"}
    trial_params = [{k: v for k, v in _overrides(j).items() if k in searched} for j in jobs]
    assert all(set(p) == searched for p in trial_params) and trial_params[0] != trial_params[1]

    results = OmegaConf.to_container(OmegaConf.load(sweep / "optimization_results.yaml"))
    assert set(results["best_params"]) == searched
    assert results["best_value"] == pytest.approx(max(m["val_acc_best"] for m in metrics))

    best = OmegaConf.to_container(OmegaConf.load(sweep / "best_trial.yaml"))
    best_job = Path(best["job_dir"])
    assert best_job in jobs
    assert {f"{k}={v}" for k, v in results["best_params"].items()} <= set(best["overrides"])
    assert best["command"].startswith("python -m emotion.train ") and "hparams_search" not in best["command"]
    assert best["metric"] == "val/acc_best"
    assert json.loads((best_job / "metrics.json").read_text())["val_acc_best"] == pytest.approx(best["value"])
    assert "Best trial: val/acc_best =" in r.stdout and best["command"] in r.stdout

    # One offline W&B run per trial, all in the sweep's group, each with its trial's hyperparameters.
    groups = []
    for job, params in zip(jobs, trial_params):
        (run_file,) = job.glob("wandb/offline-run-*/run-*.wandb")
        records = list(wandb_records(run_file))
        groups += [rec.run.run_group for rec in records if rec.WhichOneof("record_type") == "run"]
        config = {item.key: json.loads(item.value_json) for rec in records
                  if rec.WhichOneof("record_type") == "config" for item in rec.config.update}
        assert config["model"]["lr"] == pytest.approx(float(params["model.lr"]))
    assert groups == ["optuna_fer_optuna"] * 2  # one group per study


@pytest.mark.slow  # three sweeps of up to 3 trials: about 40 s on 2 cores
def test_optuna_study_persists_and_resumes_after_the_sweep_is_killed(tmp_path):
    import optuna

    sweep = tmp_path / "study"
    args = ["-m", "hparams_search=fer_optuna", "hydra.sweeper.n_trials=3", "model=mini_xception", "logger=csv",
            *FAST, f"data.cache_dir={tmp_path / 'cache'}", f"hydra.sweep.dir={sweep}"]
    # The second trial kills the whole sweep (the basic launcher runs trials in its own process).
    killed = subprocess.run([sys.executable, str(FAULTS), "trial", "1", "SIGKILL", "--",
                             *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr[-3000:]
    storage = f"sqlite:///{sweep}/optuna.db"
    assert [t.state.name for t in optuna.load_study(study_name="fer_optuna", storage=storage).trials] == \
        ["COMPLETE", "RUNNING"]

    r = run_cli("emotion.train", *args)  # the same command again
    assert r.returncode == 0, r.stderr[-3000:]
    assert "left running by an interrupted sweep: marked failed" in r.stdout + r.stderr
    study = optuna.load_study(study_name="fer_optuna", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    jobs = _jobs(sweep)  # both sweeps' job folders, in the study's folder, in trial order
    assert len(jobs) == 4 and len({j.name.rpartition("_")[0] for j in jobs}) == 2
    assert [(j / "metrics.json").exists() for j in jobs] == [True, False, True, True]
    values = [json.loads((j / "metrics.json").read_text())["val_acc_best"] for j in jobs
              if (j / "metrics.json").exists()]
    assert [t.value for t in study.trials if t.value is not None] == pytest.approx(values)
    best = OmegaConf.to_container(OmegaConf.load(sweep / "best_trial.yaml"))
    assert best["value"] == pytest.approx(max(values)) == pytest.approx(study.best_value)
    assert json.loads((Path(best["job_dir"]) / "metrics.json").read_text())["val_acc_best"] == \
        pytest.approx(study.best_value)

    again = run_cli("emotion.train", *args)  # a finished study runs nothing more, and reports the same
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(optuna.load_study(study_name="fer_optuna", storage=storage).trials) == 4
    assert OmegaConf.to_container(OmegaConf.load(sweep / "best_trial.yaml")) == best


@pytest.mark.slow  # 13 s; the Optuna sweep keeps a Hydra multirun in the default suite
def test_plain_multirun_writes_one_folder_per_job(tmp_path):
    sweep = tmp_path / "multirun"
    r = run_cli("emotion.train", "-m", "model=mini_xception", "model.lr=0.01,0.05", "logger=csv", *FAST,
                f"data.cache_dir={tmp_path / 'cache'}", f"hydra.sweep.dir={sweep}")
    assert r.returncode == 0, r.stderr[-3000:]
    jobs = _jobs(sweep)
    assert [_overrides(j)["model.lr"] for j in jobs] == ["0.01", "0.05"]
    for job in jobs:
        m = json.loads((job / "metrics.json").read_text())
        assert m["arch"] == "mini_xception" and m["test"]["n"] == 16
        assert (job / "confusion_matrix.png").is_file()
    assert not (sweep / "optimization_results.yaml").exists() and not (sweep / "best_trial.yaml").exists()

    # The report names each job's own command, not the sweep's command line.
    write_report(jobs, tmp_path / "report")
    csv_text = (tmp_path / "report" / "report.csv").read_text()
    assert "model.lr=0.01 " in csv_text and "model.lr=0.05 " in csv_text and "0.01,0.05" not in csv_text


def _agent_command(sweep: dict, values: dict) -> list[str]:
    """The command ``wandb agent`` runs for a trial with these parameter values."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    args = create_sweep_command_args({"args": {k: {"value": v} for k, v in values.items()}})
    cmd: list[str] = []
    for part in sweep["command"]:
        cmd += args[part[2:-1]] if part in ("${args_no_hyphens}",) else [part]
    return cmd


def test_wandb_sweep_definition_drives_train_with_hydra_overrides(tmp_path):
    sweep = yaml.safe_load(WANDB_SWEEP.read_text())
    assert sweep["method"] == "bayes"
    assert sweep["metric"] == {"name": "val/acc_best", "goal": "maximize"}
    assert sweep["command"][:4] == ["${env}", "${interpreter}", "-m", "emotion.train"]
    assert sweep["command"][-1] == "${args_no_hyphens}"
    # The same search space as the Optuna config.
    optuna_params = yaml.safe_load(OPTUNA_CONF.read_text())["hydra"]["sweeper"]["params"]
    assert set(sweep["parameters"]) == set(optuna_params)

    params = sweep["parameters"]
    for i, model in enumerate(params["model"]["values"]):
        corner = "min" if i % 2 == 0 else "max"
        values = {"model": model, **{k: (p["values"][i % len(p["values"])] if "values" in p else p[corner])
                                     for k, p in params.items() if k != "model"}}
        cmd = _agent_command(sweep, values)
        overrides = cmd[cmd.index("emotion.train") + 1:]
        assert f"model={model}" in overrides and "logger=wandb" in overrides
        # Hydra accepts every override the agent passes, and the values land where intended.
        cfg = compose_cfg(tmp_path / str(i), overrides)
        assert cfg.model.arch == model
        assert cfg.model.lr == pytest.approx(values["model.lr"])
        assert cfg.model.weight_decay == pytest.approx(values["model.weight_decay"])
        assert cfg.model.label_smoothing == pytest.approx(values["model.label_smoothing"])
        assert cfg.model.mixup_alpha == pytest.approx(values["model.mixup_alpha"])
        assert cfg.data.batch_size == values["data.batch_size"]


def test_hparams_search_config_composes_for_a_single_run(tmp_path):
    cfg = compose_cfg(tmp_path, ["hparams_search=fer_optuna", "logger=wandb"], resolve=False)
    assert cfg.optimized_metric == "val/acc_best"
    # One W&B group per study (resolved by Hydra in a real run: test_optuna_sweep_runs_trials_…).
    assert OmegaConf.to_container(cfg.logger.wandb)["group"] == "optuna_${hydra:sweeper.study_name}"
