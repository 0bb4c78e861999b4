"""ONNX export and the ONNX Runtime classifier: same probabilities as torch, in the predictor too."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from emotion.checkpoint import load_model
from emotion.data import FER2013DataModule, to_model_input
from emotion.inference import FaceEmotionPredictor, OnnxClassifier, load_classifier
from emotion.models import predict_proba
from tests.helpers import SAMPLE_PHOTO, SAMPLE_ROOT, run_cli

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def onnx_export(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "model"
    r = run_cli("emotion.export", str(tiny_checkpoint), str(out), "--onnx",
                "--train-metrics", str(tiny_checkpoint.parent.parent / "metrics.json"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "with ONNX" in r.stdout
    return out


def test_onnx_runtime_matches_torch_on_the_sample(onnx_export):
    assert sorted(p.name for p in onnx_export.iterdir()) == ["model.json", "model.onnx", "model.safetensors"]
    torch_model, onnx_model = load_classifier(onnx_export, "torch", "cpu"), load_classifier(onnx_export, "onnx")
    assert isinstance(onnx_model, OnnxClassifier) and onnx_model.path == onnx_export / "model.onnx"
    images = FER2013DataModule(str(SAMPLE_ROOT), cache_dir=None).dataset("test").images
    x = to_model_input(images, torch_model.hparams.input_size)  # all 70 faces, one batch of any size
    for tta in ("none", "flip", "tencrop"):
        with torch.no_grad():
            ref, got = predict_proba(torch_model, x, tta), predict_proba(onnx_model, x, tta)
        assert got.shape == (70, 7)
        assert float((got - ref).abs().max()) <= 1e-3, tta


def test_predictor_and_cli_with_runtime_onnx(onnx_export, tmp_path):
    torch_p = FaceEmotionPredictor.from_checkpoint(onnx_export, device="cpu", bf16=False)
    onnx_p = FaceEmotionPredictor.from_checkpoint(onnx_export, runtime="onnx")
    assert onnx_p.runtime == "onnx" and not onnx_p.bf16 and "runtime='onnx'" in repr(onnx_p)
    a, b = torch_p(SAMPLE_PHOTO), onnx_p(SAMPLE_PHOTO)
    assert len(a.faces) == len(b.faces) == 6
    for fa, fb in zip(a.faces, b.faces):
        assert fa.box == fb.box
        assert np.allclose(list(fa.probabilities.values()), list(fb.probabilities.values()), atol=1e-3)
    out = tmp_path / "out"
    r = run_cli("emotion.predict", str(SAMPLE_PHOTO), "--checkpoint", str(onnx_export), "--runtime", "onnx",
                "--out", str(out), "--no-annotate", "-q")
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads((out / "predictions.json").read_text())
    assert doc["settings"]["runtime"] == "onnx" and len(doc["results"][0]["faces"]) == 6
    r = run_cli("emotion.predict", str(SAMPLE_PHOTO), "--runtime", "onnx", "--device", "cuda",
                "--out", str(tmp_path / "x"))
    assert r.returncode != 0 and "--runtime onnx runs on the CPU" in r.stderr and "Traceback" not in r.stderr


def test_a_checkpoint_gets_its_onnx_file_made_once_in_the_cache(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("EMOTION_CACHE_DIR", str(tmp_path))
    first = load_classifier(tiny_checkpoint, "onnx")
    (made,) = (tmp_path / "onnx").glob("mini_xception-*.onnx")
    assert first.path == made
    stamp = made.stat().st_mtime_ns
    assert load_classifier(tiny_checkpoint, "onnx").path == made and made.stat().st_mtime_ns == stamp
    x = torch.randn(3, 1, 48, 48)
    with torch.no_grad():
        assert torch.allclose(first(x), load_model(tiny_checkpoint, "cpu")(x), atol=1e-4)


def test_unknown_runtime_and_broken_onnx_are_named(onnx_export, tmp_path):
    from emotion.errors import EmotionError

    with pytest.raises(EmotionError, match="runtime 'tensorrt': choose one of torch, onnx"):
        load_classifier(onnx_export, "tensorrt")
    bad = tmp_path / "model"
    bad.mkdir()
    for f in ("model.json", "model.safetensors"):
        (bad / f).write_bytes((onnx_export / f).read_bytes())
    (bad / "model.onnx").write_bytes(b"not a graph")
    with pytest.raises(EmotionError, match="not a loadable ONNX model.*--onnx"):
        load_classifier(bad, "onnx")
