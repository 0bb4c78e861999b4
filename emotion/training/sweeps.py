"""Hydra callbacks for sweeps, their one home: one W&B group per sweep, the best trial made obvious (its
overrides, job folder and a command that re-runs it, printed and saved as ``best_trial.yaml``), and Optuna
studies that persist and resume.

With a storage (``sqlite:///…`` by default, see ``conf/hparams_search/fer_optuna.yaml``), the plugin
loads an existing study of the same name, but then runs ``n_trials`` *more* trials.
:class:`ResumeStudy` makes ``n_trials`` the number of finished trials the study should have:
running the same command again runs only the trials still missing. A trial that a killed sweep
left running is recorded as failed first.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from emotion.io import atomic_path
from emotion.reporting.record import command_line

__all__ = ["BestTrialReport", "SweepWandbGroup", "ResumeStudy", "best_trial", "finished_trials", "job_dirs",
           "RESULTS_FILE", "BEST_FILE"]

#: Written by the Optuna sweeper into the sweep folder.
RESULTS_FILE = "optimization_results.yaml"
#: Written by :class:`BestTrialReport` beside it.
BEST_FILE = "best_trial.yaml"


def _overrides(job_dir: Path) -> list[str]:
    path = job_dir / ".hydra" / "overrides.yaml"
    return [str(o) for o in OmegaConf.load(path)] if path.is_file() else []


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The job folders of a sweep, in launch order: ``<n>``, or ``<sweep start>_<n>`` for a study
    that several sweeps added to (``conf/hparams_search/fer_optuna.yaml``)."""
    def order(d: Path) -> tuple[str, int]:
        start, _, n = d.name.rpartition("_")
        return (start, int(n)) if n.isdigit() else (d.name, -1)

    return sorted((d for d in sweep_dir.iterdir() if (d / ".hydra" / "overrides.yaml").is_file()), key=order)


def best_trial(sweep_dir: str | Path) -> dict[str, Any] | None:
    """The best trial of the Optuna sweep in ``sweep_dir``, or ``None`` if it has no results file.

    Returns:
        ``value``, ``params`` (Optuna's best parameters), ``job_dir`` (the trial's folder, ``None``
        if not found), ``overrides`` (all of that job's overrides but ``hparams_search``) and
        ``command`` (a single run with those overrides).
    """
    sweep_dir = Path(sweep_dir)
    results_path = sweep_dir / RESULTS_FILE
    if not results_path.is_file():
        return None
    results = OmegaConf.to_container(OmegaConf.load(results_path))
    if "best_params" not in results:  # a multi-objective study has a Pareto front instead
        return None
    params = {str(k): v for k, v in results["best_params"].items()}
    wanted = {f"{k}={v}" for k, v in params.items()}  # as the sweeper formatted the trial's overrides
    job_dir = next((d for d in job_dirs(sweep_dir) if wanted <= set(_overrides(d))), None)
    # The job's own overrides also carry the fixed ones given on the command line (data.root=…);
    # hparams_search is left out so that the command trains once instead of starting a new sweep.
    overrides = (_overrides(job_dir) if job_dir is not None else sorted(wanted))
    overrides = [o for o in overrides if not o.startswith("hparams_search=")]
    return {
        "value": results.get("best_value"),
        "params": params,
        "job_dir": None if job_dir is None else str(job_dir),
        "overrides": overrides,
        "command": command_line("emotion.train", overrides),
    }


class SweepWandbGroup(Callback):
    """Give every trial of a sweep the same ``logger.wandb.group``, however it is timestamped.

    Each trial's config is composed afresh, but Hydra copies the sweep's resolver cache into it, so
    ``${now:…}`` gives every trial the value the sweep's own config resolved first. The default
    sweep folder resolves it at the start; a ``hydra.sweep.dir`` without a timestamp does not, so
    the group is resolved here, before the first trial.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        OmegaConf.select(config, "logger.wandb.group", default=None)


class BestTrialReport(Callback):
    """At the end of a multirun, print the Optuna sweep's best trial and save it as ``best_trial.yaml``.

    Enabled by ``conf/hparams_search/*.yaml`` (``hydra.callbacks.best_trial``); a plain multirun,
    which has no ``optimization_results.yaml``, is left alone.
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        best = best_trial(sweep_dir)
        if best is None:
            return
        best["metric"] = str(config.get("optimized_metric", ""))
        path = sweep_dir / BEST_FILE
        with atomic_path(path) as tmp:
            OmegaConf.save(OmegaConf.create(best), tmp)
        value = best["value"]
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        # print, not log: this is the sweep's answer and must be seen whatever the logging config.
        print(f"\nBest trial: {best['metric']} = {shown}  ({best['job_dir'] or 'job folder not found'})\n"
              f"  overrides: {' '.join(f'{k}={v}' for k, v in best['params'].items())}\n"
              f"  re-run:    {best['command']}\n"
              f"  saved:     {path}  (Optuna's own: {sweep_dir / RESULTS_FILE})", flush=True)


log = logging.getLogger(__name__)


def finished_trials(storage: str, study_name: str) -> int:
    """Trials of the study that finished (complete or pruned), after marking the ones a killed
    sweep left running as failed; 0 for a study that does not exist yet."""
    import optuna
    from optuna.trial import TrialState

    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:  # Optuna 2.10: "Record does not exist."
        return 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        # One sweep per study at a time: a trial running before the sweep starts belongs to a
        # sweep that was killed, and will never report.
        study._storage.set_trial_state(trial._trial_id, TrialState.FAIL)
        log.warning("trial %d of study %r was left running by an interrupted sweep: marked failed",
                    trial.number, study_name)
    return sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.get_trials(deepcopy=False))


class ResumeStudy(Callback):
    """Before the sweeper is built: count ``hydra.sweeper.n_trials`` over the whole stored study."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweeper = config.hydra.sweeper
        storage = sweeper.get("storage")
        if not storage:
            return
        if str(storage).startswith("sqlite:///"):  # SQLite does not make the folder
            Path(str(storage)[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        finished = finished_trials(str(storage), str(sweeper.study_name))
        if finished:
            log.info("study %r has %d of %d finished trials: running %d more", sweeper.study_name, finished,
                     sweeper.n_trials, max(0, sweeper.n_trials - finished))
        with read_write(sweeper), open_dict(sweeper):
            sweeper.n_trials = max(0, int(sweeper.n_trials) - finished)
