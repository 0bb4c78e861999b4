"""Every constrained config value: one line naming it, exit 2, no traceback, no metrics.json."""

from __future__ import annotations

import pytest

from emotion.config.rules import EVAL_RULES, TRAIN_RULES, ConfigError, check_config
from tests.helpers import CONFIG_DIR, compose_cfg, run_clis_at_once

# key -> a value its rule refuses (as typed on the command line)
BAD = {
    "data.root": "''", "data.batch_size": "0", "data.num_workers": "-1", "data.image_size": "8",
    "data.val_fraction": "1.0", "data.seed": "-3", "data.balance": "sampeler", "data.pin_memory": "maybe",
    "trainer.accelerator": "tpu", "trainer.devices": "0", "trainer.precision": "8-mixed", "trainer.max_epochs": "0",
    "trainer.min_epochs": "-1", "trainer.num_nodes": "0", "trainer.accumulate_grad_batches": "0",
    "trainer.check_val_every_n_epoch": "0", "trainer.log_every_n_steps": "0", "trainer.num_sanity_val_steps": "-2",
    "trainer.gradient_clip_val": "-1",
    "model.arch": "resnet19", "model.num_classes": "1", "model.in_chans": "0", "model.input_size": "15",
    "model.drop_rate": "1.0", "model.optimizer": "adamm", "model.lr": "-1", "model.momentum": "1.5",
    "model.weight_decay": "-0.1", "model.scheduler": "cosin", "model.warmup_epochs": "-1", "model.cycles": "0",
    "model.plateau_patience": "-1", "model.label_smoothing": "1", "model.mixup_alpha": "-0.2",
    "model.cutmix_alpha": "nan", "model.name": "''", "model.drop_path_rate": "1.5",
    "logger.wandb.project": "''", "logger.wandb.offline": "sometimes", "logger.wandb.log_model": "often",
    "callbacks.model_checkpoint.mode": "maximum", "callbacks.early_stopping.patience": "-1",
    "callbacks.early_stopping.mode": "up", "callbacks.ema.decay": "1.5",
    "data.label_map": "{contempt: smug}", "data.soft_labels": "''", "data.ferplus": "''", "data.mode": "vote",
    "model.distill": "'{weight: 2.0}'",
    "seed": "-1", "test": "perhaps", "tta": "tencrops", "ckpt_path": "''", "init_from": "/no/such/model",
    "optimized_metric": "''",
    "split": "train",
}
# Options a key's group must be selected for the key to exist.
NEEDS = {"callbacks.early_stopping": "callbacks=early_stopping", "callbacks.ema": "callbacks=ema",
         "logger.wandb": "logger=wandb", "model.name": "model=timm", "model.drop_path_rate": "model=timm",
         "model.distill": "data.soft_labels=teachers.npz", "data.mode": "data=ferplus"}


# Keys that the shipped configs leave out, so that the override adds them.
ADDED = {"model.plateau_patience"}


def _overrides(key: str) -> list[str]:
    extra = [o for prefix, o in NEEDS.items() if key.startswith(prefix)]
    return [*extra, f"{'+' if key in ADDED else ''}{key}={BAD[key]}"]


def test_an_unknown_timm_architecture_is_one_line(tmp_path):
    cfg = compose_cfg(tmp_path, ["data=fer2013_sample", "model=timm", "model.arch=timm/resnet9000"], resolve=False)
    with pytest.raises(ConfigError) as e:
        check_config(cfg, TRAIN_RULES)
    assert e.value.problems == [p for p in e.value.problems if p.startswith("model.arch=timm/resnet9000: timm has no")]
    assert len(e.value.problems) == 1


def test_every_rule_has_a_bad_value():
    assert {r.key for r in TRAIN_RULES + EVAL_RULES} == set(BAD)


@pytest.mark.parametrize("key", [r.key for r in TRAIN_RULES])
def test_train_rule_names_the_bad_value(tmp_path, key):
    cfg = compose_cfg(tmp_path, ["data=fer2013_sample", *_overrides(key)], resolve=False)
    with pytest.raises(ConfigError) as e:
        check_config(cfg, TRAIN_RULES)
    assert len(e.value.problems) == 1 and e.value.problems[0].startswith(f"{key}="), e.value.problems


@pytest.mark.parametrize("key", [r.key for r in EVAL_RULES])
def test_eval_rule_names_the_bad_value(tmp_path, key):
    args = ["data=fer2013_sample", *_overrides(key)] + ([] if key == "ckpt_path" else ["ckpt_path=x.ckpt"])
    cfg = compose_cfg(tmp_path, args, config_name="eval", resolve=False)
    with pytest.raises(ConfigError) as e:
        check_config(cfg, EVAL_RULES)
    assert len(e.value.problems) == 1 and e.value.problems[0].startswith(f"{key}="), e.value.problems


_SHIPPED = [("train", group, path.stem) for group in ("experiment", "trainer", "model", "logger", "callbacks", "data")
            for path in sorted((CONFIG_DIR / group).glob("*.yaml"))]
_SHIPPED += [("eval", "data", path.stem) for path in sorted((CONFIG_DIR / "data").glob("*.yaml"))]


@pytest.mark.parametrize("config_name,group,name", _SHIPPED, ids=[f"{c}-{g}={n}" for c, g, n in _SHIPPED])
def test_every_shipped_config_validates(tmp_path, config_name, group, name):
    """One case per shipped config file, so that one bad file cannot hide the rest (#32)."""
    args = [f"{group}={name}"] + (["ckpt_path=x.ckpt"] if config_name == "eval" else [])
    if group == "trainer" and name in ("gpu", "ddp"):
        args.append("trainer.accelerator=cpu")  # composes and checks on a machine without a GPU
    check_config(compose_cfg(tmp_path, args, config_name=config_name),
                 TRAIN_RULES if config_name == "train" else EVAL_RULES)


# The CLI, as a user meets it: the four commands, several bad values at once, and a sample
# of keys from every group. Each is a real process: exit status, stderr and the run folder.
CLI_CASES = [
    ("emotion.train", ["data.batch_size=0"], ["data.batch_size=0: must be an integer >= 1"]),
    ("emotion.train", ["model.lr=-1"], ["model.lr=-1: must be > 0"]),
    ("emotion.evaluate", [], ["ckpt_path is missing: say which checkpoint to evaluate"]),
    ("emotion.train", ["trainer.accelerator=gpu"], ["trainer.accelerator=gpu: torch sees no GPU"]),
    ("emotion.train", ["model.optimizer=adamm", "model.drop_rate=1.5", "trainer.max_epochs=0"],
     ["model.drop_rate=1.5: must be in [0, 1)", "model.optimizer=adamm: choose one of sgd, adamw (did you mean adamw?)",
      "trainer.max_epochs=0: must be an integer >= 1"]),
    ("emotion.train", ["callbacks=early_stopping", "callbacks.early_stopping.mode=up"],
     ["callbacks.early_stopping.mode=up: choose one of max, min"]),
    ("emotion.evaluate", ["ckpt_path=x.ckpt", "split=train"], ["split=train: choose one of val, test"]),
]


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """Every case of CLI_CASES, run as a real process, all at once (:func:`run_clis_at_once`): the run
    folder and the finished process of each."""
    root = tmp_path_factory.mktemp("cli")
    runs = {i: root / f"run{i}" for i in range(len(CLI_CASES))}
    done = run_clis_at_once({i: (module, ["data=fer2013_sample", *args, f"hydra.run.dir={runs[i]}"])
                             for i, (module, args, _) in enumerate(CLI_CASES)}, timeout=300)
    return {i: (runs[i], done[i]) for i in runs}


@pytest.mark.parametrize("case", range(len(CLI_CASES)), ids=[f"{m} {' '.join(a)}".strip() for m, a, _ in CLI_CASES])
def test_cli_reports_bad_values_in_one_line_each(cli_runs, case):
    import torch

    _, args, lines = CLI_CASES[case]
    if "trainer.accelerator=gpu" in args and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    run, r = cli_runs[case]
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error: ")]
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert len(errors) == len(lines) and all(e.startswith(f"error: {want}") for e, want in zip(errors, lines)), errors
    assert not (run / "metrics.json").exists() and not (run / "checkpoints").exists()
