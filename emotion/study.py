"""Optuna studies that persist and resume, with Hydra's Optuna sweeper.

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
from omegaconf import DictConfig, open_dict, read_write

__all__ = ["ResumeStudy", "finished_trials"]

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
