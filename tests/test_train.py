"""Real Lightning runs on the bundled sample: every model, metrics.json, checkpoints, W&B, DDP, CLIs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from emotion import EmotionClassifier, load_model
from emotion.data import CLASS_NAMES
from emotion.device import cpu_has_native_bf16
from emotion.errors import EmotionError
from emotion.models import list_models, predict_proba
from emotion.train import train
from tests.helpers import (
    MINI_XCEPTION_PARAMS,
    ROOT,
    SHARED_FER,
    compose_cfg,
    needs_shared_fer,
    quick_overrides,
    run_cli,
    run_clis_at_once,
    wandb_records,
    write_ck_style,
)


@pytest.mark.parametrize("model", list_models())
def test_fast_dev_run_every_model(tmp_path, model):
    cfg = compose_cfg(tmp_path, quick_overrides(f"model={model}", "trainer.fast_dev_run=true",
                                                "data.batch_size=8"))
    result = train(cfg)
    metrics = result.metrics
    assert {"train/loss_step", "train/loss_epoch"} <= set(metrics)
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))
    assert result.record["test"]["n"] == 8  # one test batch


@pytest.mark.parametrize("name", ["convnext_atto", pytest.param("resnet26d", marks=pytest.mark.slow)])
def test_a_timm_model_by_config_trains_and_loads(tmp_path, name):
    cfg = compose_cfg(tmp_path, quick_overrides("model=timm", f"model.name={name}", "trainer.max_epochs=1",
                                                "data.batch_size=32"))
    result = train(cfg)
    assert result.record["arch"] == f"timm/{name}" and result.record["test"]["n"] == 70
    loaded, trained = load_model(result.record["checkpoint"], device="cpu"), result.model.model.eval().float()
    x = torch.randn(4, 1, 48, 48)
    with torch.no_grad():
        assert torch.allclose(loaded(x), trained.cpu()(x), atol=1e-5)
    assert any(type(m).__name__ == "DropPath" for m in loaded.modules())  # model.drop_path_rate reached timm


def test_short_real_run_writes_metrics(tmp_path):
    cfg = compose_cfg(tmp_path, quick_overrides("model=mini_xception", "trainer.max_epochs=3",
                                                "model.lr=0.01"))
    train(cfg)
    m = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("val", "test", "epochs", "best_epoch", "wall_time_s", "device", "git_commit", "command",
                "checkpoint", "params", "val_acc_best"):
        assert key in m, key
    for split, n in (("val", 70), ("test", 70)):
        s = m[split]
        assert s["n"] == n and 0.0 <= s["acc"] <= 1.0 and 0.0 <= s["f1_macro"] <= 1.0
        assert list(s["per_class_acc"]) == list(CLASS_NAMES)
        assert sum(map(sum, s["confusion_matrix"])) == n
    assert m["epochs"] == 3 and 0 <= m["best_epoch"] < 3
    # metrics.json val accuracy is that of the best checkpoint, which is what val/acc_best tracked.
    assert m["val"]["acc"] == pytest.approx(m["val_acc_best"], abs=1e-6)
    assert m["params"] == MINI_XCEPTION_PARAMS
    assert [r["epoch"] for r in m["history"]] == [0, 1, 2]  # learning curves, whatever the logger
    assert all({"train/acc", "train/loss", "val/acc", "val/loss", "lr"} <= set(r) for r in m["history"])
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 1000
    assert (tmp_path / "predictions.png").stat().st_size > 1000
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / "csv" / "metrics.csv").is_file()


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16")
def test_bf16_on_cpu_learns_as_well_as_fp32(tmp_path):
    runs = {}
    for precision in ("32-true", "bf16-mixed"):
        cfg = compose_cfg(tmp_path / precision, quick_overrides(
            "model=mini_xception", "trainer.max_epochs=6", "model.lr=0.01", f"trainer.precision={precision}"))
        result = train(cfg)
        runs[precision] = (result.metrics, result.record)
    (m32, r32), (m16, r16) = runs["32-true"], runs["bf16-mixed"]
    assert r16["precision"] == "bf16-mixed" and r32["precision"] == "32-true"
    first = r32["history"][0]["train/loss"]
    # Both learn (the loss falls well below where it started) and land close to each other; the
    # sample's 70 val faces make accuracy coarse, so the bound is in faces: 6 of 70.
    assert m16["train/loss_epoch"] < 0.9 * first and m32["train/loss_epoch"] < 0.9 * first
    assert m16["train/loss_epoch"] == pytest.approx(m32["train/loss_epoch"], rel=0.1)
    assert abs(r16["val"]["acc"] - r32["val"]["acc"]) <= 6 / 70


def test_checkpoint_round_trip_gives_identical_logits(tiny_checkpoint):
    x = torch.randn(5, 1, 48, 48)
    a = EmotionClassifier.load_from_checkpoint(tiny_checkpoint, map_location="cpu").eval()
    b = load_model(tiny_checkpoint, device="cpu")
    assert not b.training
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
    assert a.hparams.arch == "mini_xception" and a.hparams.class_names == list(CLASS_NAMES)


def test_export_round_trip(tiny_checkpoint, tmp_path):
    from emotion.checkpoint import export_model

    export_model(tiny_checkpoint, tmp_path / "exported", note="test")
    a, b = load_model(tiny_checkpoint, "cpu"), load_model(tmp_path / "exported", "cpu")
    x = torch.randn(3, 1, 48, 48)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
    assert b.meta["note"] == "test"
    from emotion.checkpoint import model_meta  # what a resumed init_from run reads: the meta alone

    assert model_meta(tmp_path / "exported") == b.meta and model_meta(tiny_checkpoint) == {}


def test_init_from_copies_what_fits_and_starts_a_new_head_fresh(tiny_checkpoint, tmp_path):
    from emotion.checkpoint import init_weights
    from emotion.models import create_model
    from emotion.train import build

    donor = load_model(tiny_checkpoint, "cpu").model.state_dict()
    cfg = compose_cfg(tmp_path, quick_overrides("model=mini_xception", f"init_from={tiny_checkpoint}"))
    run = build(cfg, ckpt_path=None)
    own = run.model.model.state_dict()
    assert run.protocol == f"FER2013 labels, started from the weights of a model taught by '{tiny_checkpoint}'"
    assert all(torch.equal(own[k], donor[k]) for k in donor)  # the same classes: every tensor
    assert build(cfg, ckpt_path=str(tiny_checkpoint)).protocol == run.protocol  # resumed: the same record

    net = create_model("mini_xception", num_classes=8)  # FER+'s 8 classes: all but the head
    fresh_head = {k: v.clone() for k, v in net.state_dict().items() if v.shape != donor[k].shape}
    copied, fresh, meta = init_weights(net, tiny_checkpoint)
    assert set(fresh) == set(fresh_head) and len(copied) == len(donor) - len(fresh) > 0
    state = net.state_dict()
    assert all(torch.equal(state[k], donor[k]) for k in copied)
    assert all(torch.equal(state[k], fresh_head[k]) for k in fresh)  # untouched, not zeroed
    assert meta == {}  # a checkpoint records no export meta

    with pytest.raises(EmotionError, match="none of its weights fit"):
        init_weights(create_model("vgg_tiny"), tiny_checkpoint)


def test_wandb_offline_run_writes_its_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = compose_cfg(tmp_path, quick_overrides("model=mini_xception", "trainer.max_epochs=2", "logger=wandb",
                                                "logger.wandb.log_model=true"))
    assert cfg.logger.wandb.offline is True
    record = train(cfg).record
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    (run_file,) = runs[0].glob("run-*.wandb")  # the run's log of metrics, config and images
    # log_model offline (which Lightning's own logger refuses): the best checkpoint is a model
    # artifact kept in the run folder for `wandb sync`. wandb's service process writes the run file
    # on its own time, so on a loaded machine the last records may land a little after train returns.
    deadline = time.monotonic() + 60
    while True:
        artifacts = [r.artifact for r in wandb_records(run_file) if r.WhichOneof("record_type") == "artifact"]
        if sum("best" in a.aliases for a in artifacts) == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert artifacts and {a.type for a in artifacts} == {"model"}  # Lightning's: the best, and last.ckpt
    (best,) = [a for a in artifacts if "best" in a.aliases]
    assert json.loads(best.metadata)["original_filename"] == Path(record["checkpoint"]).name


def test_class_weighted_loss_reaches_the_model(tmp_path):
    cfg = compose_cfg(tmp_path, quick_overrides("model=mini_xception", "trainer.fast_dev_run=true",
                                                "data.balance=loss"))
    assert train(cfg).model.hparams.class_weights == pytest.approx([1.0] * 7)  # the sample is balanced


def test_evaluate_cli_with_tta(tiny_checkpoint, tmp_path):
    out = tmp_path / "eval"
    r = run_cli("emotion.evaluate", f"ckpt_path={tiny_checkpoint}", "data=fer2013_sample", "tta=flip",
                "split=val", f"data.cache_dir={tmp_path}", "trainer.enable_progress_bar=false",
                f"hydra.run.dir={out}")
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads((out / "metrics.json").read_text())
    assert m["tta"] == "flip" and m["val"]["n"] == 70 and "test" not in m
    assert "PublicTest accuracy" in r.stdout


@pytest.mark.slow  # three CLI processes; the reader and datamodule are tested in the default suite
def test_evaluate_cli_on_another_datasets_class_folders(tiny_checkpoint, tmp_path):
    root = write_ck_style(tmp_path / "ck")
    common = (f"ckpt_path={tiny_checkpoint}", f"data.root={root}", f"data.cache_dir={tmp_path}",
              "trainer.enable_progress_bar=false")
    r = run_cli("emotion.evaluate", *common, f"hydra.run.dir={tmp_path / 'a'}")
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert m["test"]["n"] == 7 and m["skipped_classes"] == {"contempt": 2}
    assert sum(map(sum, m["test"]["confusion_matrix"])) == 7 and list(m["test"]["per_class_acc"]) == list(CLASS_NAMES)
    assert "skipped class folders with no FER2013 counterpart: {'contempt': 2}" in r.stdout
    assert "ck (7 faces) accuracy" in r.stdout
    r = run_cli("emotion.evaluate", *common, "data.label_map={contempt: neutral}", f"hydra.run.dir={tmp_path / 'b'}")
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert m["test"]["n"] == 9 and m["skipped_classes"] == {}
    r = run_cli("emotion.evaluate", *common, "split=val", f"hydra.run.dir={tmp_path / 'c'}")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "evaluate it with split=test" in r.stderr and not (tmp_path / "c" / "metrics.json").exists()


@pytest.mark.slow  # CLI processes on an ensemble of checkpoints: in the slow suite, which CI also runs
def test_evaluate_cli_ensemble_of_checkpoints(tiny_checkpoint, tmp_path):
    runs = {}
    for name, ckpt in (("single", f"{tiny_checkpoint}"), ("pair", f"[{tiny_checkpoint},{tiny_checkpoint}]")):
        out = tmp_path / name
        r = run_cli("emotion.evaluate", f"ckpt_path={ckpt}", "data=fer2013_sample", "tta=flip", "split=val",
                    f"data.cache_dir={tmp_path}", "trainer.enable_progress_bar=false", f"hydra.run.dir={out}")
        assert r.returncode == 0, r.stderr[-2000:]
        runs[name] = json.loads((out / "metrics.json").read_text())
    pair, single = runs["pair"], runs["single"]
    assert pair["arch"] == "ensemble of 2: mini_xception, mini_xception" and len(pair["checkpoint"]) == 2
    assert pair["params"] == 2 * single["params"]
    # Two copies of one model average to that model: the same predictions, face for face.
    assert pair["val"]["confusion_matrix"] == single["val"]["confusion_matrix"]


USER_ERRORS = [
    (["model.arch=resnet9000"], "model.arch=resnet9000: choose one of mini_xception"),
    (["data.root=/definitely/missing"], "FER2013 not found at '/definitely/missing'. FER2013 is on Kaggle"),
    (["model.optimizer=adam"], "model.optimizer=adam: choose one of sgd, adamw (did you mean adamw?)"),
    (["init_from=/no/such/model"], "init_from=/no/such/model: '/no/such/model' does not exist"),
]


@pytest.fixture(scope="module")
def user_error_runs(tmp_path_factory):
    """Every case of USER_ERRORS as ``python -m emotion.train``, all at once (:func:`run_clis_at_once`)."""
    root = tmp_path_factory.mktemp("user_errors")
    return run_clis_at_once({i: ("emotion.train", ["logger=none", "data=fer2013_sample",
                                                   f"data.cache_dir={root / str(i)}", f"hydra.run.dir={root / str(i)}",
                                                   *args])
                             for i, (args, _) in enumerate(USER_ERRORS)})


@pytest.mark.parametrize("case", range(len(USER_ERRORS)), ids=[" ".join(a) for a, _ in USER_ERRORS])
def test_train_cli_user_errors(user_error_runs, case):
    r = user_error_runs[case]
    assert r.returncode == 2
    assert USER_ERRORS[case][1] in r.stderr and "Traceback" not in r.stderr


def test_evaluate_cli_refuses_broken_checkpoint(tmp_path):
    bad = tmp_path / "broken.ckpt"
    bad.write_bytes(b"PK\x03\x04 truncated")
    r = run_cli("emotion.evaluate", f"ckpt_path={bad}", f"hydra.run.dir={tmp_path / 'o'}")
    assert r.returncode == 2 and "not a readable checkpoint" in r.stderr and "Traceback" not in r.stderr


def test_ddp_on_two_cpu_processes(tmp_path):
    r = run_cli("emotion.train", "trainer=ddp", "trainer.accelerator=cpu", "trainer.precision=32-true",
                "trainer.fast_dev_run=true", "data=fer2013_sample", "data.num_workers=0", "data.batch_size=8",
                f"data.cache_dir={tmp_path / 'cache'}", "model=mini_xception", "logger=csv",
                "callbacks.progress_bar=null", "trainer.enable_progress_bar=false", f"hydra.run.dir={tmp_path}")
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout + r.stderr
    assert "process 0 of 2" in out and "process 1 of 2" in out and "distributed_backend=gloo" in out
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["test"]["n"] == 16  # one batch of 8 on each of the 2 processes


@pytest.mark.slow
@needs_shared_fer
def test_one_real_epoch_on_cpu(tmp_path):
    # In its own process, so that a crash in a native library fails this test, not pytest (#26).
    # FER2013's last training batch is 37 faces, the odd size that crashed oneDNN on AMD Zen 4.
    proc = run_cli("emotion.train", "data.root=" + str(SHARED_FER), "data.num_workers=2", "model=mini_xception",
                   "trainer=cpu", "trainer.max_epochs=1", "logger=csv", "callbacks.progress_bar=null",
                   "trainer.enable_progress_bar=false", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, f"exit {proc.returncode}:\n{proc.stderr[-3000:]}"
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["val"]["n"] == 3589 and m["test"]["n"] == 3589
    # One CPU epoch (LR still warming up) is well above uniform guessing (1/7); measured: 0.264.
    assert m["test"]["acc"] > 0.20


def test_ema_run_tests_the_average_and_tta_auto_picks_on_val(tmp_path):
    # fp32, so that the inference-side recount below is exact.
    cfg = compose_cfg(tmp_path, quick_overrides("model=mini_xception", "callbacks=ema", "callbacks.ema.decay=0.9",
                                                "trainer.max_epochs=2", "trainer.precision=32-true", "tta=auto"))
    result = train(cfg)
    m = result.record
    # Every mode was scored on val only, and the record's TTA is the best of them (ties: the cheaper).
    assert list(m["tta_val_acc"]) == ["none", "flip", "tencrop"]
    assert m["tta"] == max(m["tta_val_acc"], key=m["tta_val_acc"].get)
    assert m["val"]["acc"] == pytest.approx(m["tta_val_acc"][m["tta"]])
    # The best checkpoint holds the average (the raw weights only for resuming), and the test
    # scored exactly what loading that checkpoint for inference gives.
    ckpt = torch.load(m["checkpoint"], map_location="cpu", weights_only=False)
    raw = ckpt["current_model_state"]
    assert any(not torch.equal(v, raw[k]) for k, v in ckpt["state_dict"].items() if v.is_floating_point())
    loaded = load_model(m["checkpoint"]).eval()
    correct = 0
    with torch.no_grad():
        for x, y in result.datamodule.test_dataloader():
            correct += int((predict_proba(loaded, x, m["tta"]).argmax(1) == y).sum())
    assert correct == round(m["test"]["acc"] * m["test"]["n"])


@pytest.mark.filterwarnings("ignore:The dirpath has changed")  # it was made in another folder: expected
def test_a_checkpoint_made_before_the_layout_move_loads_and_resumes(tmp_path):
    """tests/assets/pre_move/last.ckpt was written at commit 7c9356c, when the LightningModule, EMA,
    resume and history modules sat at the top of ``emotion/`` (#21 moved them to ``emotion/training/``):
    it still loads for inference and resumes training, EMA and history included."""
    ckpt = ROOT / "tests" / "assets" / "pre_move" / "last.ckpt"
    model = load_model(ckpt)
    assert sum(p.numel() for p in model.parameters()) == MINI_XCEPTION_PARAMS
    assert EmotionClassifier.load_from_checkpoint(ckpt).hparams.arch == "mini_xception"
    cfg = compose_cfg(tmp_path, quick_overrides("model=mini_xception", "callbacks=ema", "trainer.max_epochs=2",
                                                f"ckpt_path={ckpt}"))
    record = train(cfg).record
    assert record["epochs"] == 2 and [r["epoch"] for r in record["history"]] == [0, 1]
