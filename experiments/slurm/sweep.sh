#!/bin/bash
# An Optuna study whose trials are SLURM jobs (hydra-submitit-launcher), run from a login node:
# this process proposes trials and collects results; each trial is one GPU job. Running the same
# command again continues the study (conf/hparams_search/fer_optuna.yaml). Pass the cluster's
# knobs as overrides, e.g.  bash experiments/slurm/sweep.sh hydra.launcher.partition=gpu
set -euo pipefail
source .venv/bin/activate
python -m emotion.train -m hparams_search=fer_optuna hydra/launcher=slurm trainer=gpu \
    data.root="${FER2013_DIR:-../shared/data/fer2013}" hydra.sweeper.n_jobs=4 "$@"
