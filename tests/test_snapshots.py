"""Snapshot ensembles: the cosine restarts ``model.cycles`` times, and each cycle's end is saved."""

from __future__ import annotations

import math

import pytest
import torch

from emotion import load_model
from emotion.config.rules import TRAIN_RULES, ConfigError, check_config
from emotion.train import train
from emotion.training.module import EmotionClassifier
from tests.helpers import compose_cfg, quick_overrides


class _Trainer:
    """What configure_optimizers reads of a trainer."""

    def __init__(self, steps: int, epochs: int) -> None:
        self.estimated_stepping_batches, self.max_epochs = steps, epochs


def _lrs(cycles: int, warmup_epochs: int, steps: int = 120, epochs: int = 6) -> list[float]:
    model = EmotionClassifier(arch="vgg_tiny", lr=1.0, scheduler="cosine", warmup_epochs=warmup_epochs, cycles=cycles)
    model._trainer = _Trainer(steps, epochs)
    sched = model.configure_optimizers()["lr_scheduler"]["scheduler"]
    return [sched.lr_lambdas[0](s) for s in range(steps)]


def test_one_cycle_is_the_plain_cosine():
    lrs = _lrs(cycles=1, warmup_epochs=1)
    warmup = 20
    assert lrs[:warmup] == [(s + 1) / (warmup + 1) for s in range(warmup)]
    assert lrs[warmup:] == [0.5 * (1 + math.cos(math.pi * ((s - warmup) / (120 - warmup)))) for s in range(warmup, 120)]


def test_three_cycles_restart_at_the_peak_and_each_ends_near_zero():
    lrs = _lrs(cycles=3, warmup_epochs=1)
    assert lrs[40] == lrs[80] == 1.0  # every cycle after the first starts from the peak
    assert max(lrs[39], lrs[79], lrs[119]) < 0.01  # and decays to nearly zero before its snapshot
    assert lrs[:20] == _lrs(cycles=1, warmup_epochs=1)[:20]  # the warm-up is only the first cycle's
    assert lrs[41:80] == lrs[81:120]


@pytest.mark.parametrize("overrides, problem", [
    (["model.cycles=4", "trainer.max_epochs=10"], "model.cycles=4 must divide trainer.max_epochs=10"),
    (["model=vgg", "+model.cycles=2"], "model.cycles=2 restarts a cosine schedule: set model.scheduler=cosine"),
])
def test_cycles_that_do_not_fit_are_one_line(tmp_path, overrides, problem):
    cfg = compose_cfg(tmp_path, ["data=fer2013_sample", *overrides], resolve=False)
    with pytest.raises(ConfigError) as e:
        check_config(cfg, TRAIN_RULES)
    assert len(e.value.problems) == 1 and e.value.problems[0].startswith(problem), e.value.problems


def test_a_run_with_restarts_saves_one_loadable_snapshot_per_cycle(tmp_path):
    cfg = compose_cfg(tmp_path, quick_overrides("model=mini_xception", "callbacks=snapshots", "callbacks.ema.decay=0.9",
                                                "model.cycles=2", "trainer.max_epochs=4", "data.batch_size=64"))
    train(cfg)
    snaps = sorted((tmp_path / "checkpoints").glob("snapshot_*.ckpt"))
    assert [p.name for p in snaps] == ["snapshot_1_epoch_001.ckpt", "snapshot_2_epoch_003.ckpt"]
    total = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["global_step"]
    for k, path in enumerate(snaps, 1):
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        assert ckpt["global_step"] == k * total // 2  # taken at a cycle's last step, where its LR is lowest
        raw = ckpt["current_model_state"]  # the EMA average is what the snapshot holds
        assert any(not torch.equal(v, raw[k]) for k, v in ckpt["state_dict"].items() if v.is_floating_point())
        assert load_model(path, device="cpu")(torch.zeros(1, 1, 48, 48)).shape == (1, 7)
    first, second = (torch.load(p, map_location="cpu", weights_only=True)["state_dict"] for p in snaps)
    assert any(not torch.equal(v, second[k]) for k, v in first.items() if v.is_floating_point())
