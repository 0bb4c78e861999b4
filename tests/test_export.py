"""Exporting weights only, temperature scaling and calibration error."""

from __future__ import annotations

import json

import torch

from emotion.checkpoint import load_model
from emotion.training.calibration import expected_calibration_error, fit_temperature
from tests.helpers import SAMPLE_ROOT, run_cli


def test_fit_temperature_recovers_a_known_one():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(20_000, 7, generator=g) * 2
    labels = torch.multinomial(z.softmax(1), 1, generator=g).squeeze(1)  # calibrated at T = 1 for z
    assert abs(fit_temperature(z * 3, labels) - 3.0) < 0.15


def test_ece_is_zero_for_perfect_confident_predictions_and_high_when_overconfident():
    labels = torch.arange(7).repeat(10)
    perfect = torch.nn.functional.one_hot(labels, 7).float()
    assert expected_calibration_error(perfect, labels) == 0.0
    wrong = torch.nn.functional.one_hot((labels + 1) % 7, 7).float()
    assert expected_calibration_error(wrong, labels) == 1.0


def test_export_cli_with_calibration(tiny_checkpoint, tmp_path):
    run_dir = tiny_checkpoint.parent.parent
    out = tmp_path / "model"
    r = run_cli("emotion.export", str(tiny_checkpoint), str(out), "--train-metrics", str(run_dir / "metrics.json"),
                "--calibrate-on", str(SAMPLE_ROOT))
    assert r.returncode == 0, r.stderr[-2000:]
    meta = json.loads((out / "model.json").read_text())
    assert meta["hparams"]["arch"] == "mini_xception" and meta["temperature"] > 0
    assert 0 <= meta["calibration"]["ece_test_after"] <= 1
    assert meta["metrics"]["test"]["n"] == 70 and meta["train_command"].startswith("python -m emotion.train")
    x = torch.randn(2, 1, 48, 48)
    with torch.no_grad():
        assert torch.equal(load_model(out, "cpu")(x), load_model(tiny_checkpoint, "cpu")(x))
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.safetensors"]


def test_export_cli_missing_metrics_file(tiny_checkpoint, tmp_path):
    r = run_cli("emotion.export", str(tiny_checkpoint), str(tmp_path / "m"), "--train-metrics", "nope.json")
    assert r.returncode == 2 and "can't read metrics file 'nope.json'" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "m").exists()
