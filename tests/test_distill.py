"""Knowledge distillation: the teachers' soft-label file, its checks, and a student trained from it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from emotion.config.rules import TRAIN_RULES, ConfigError, check_config
from emotion.data.datamodule import FER2013DataModule
from emotion.data.soft_labels import faces_fingerprint, load_soft_labels, save_soft_labels
from emotion.errors import EmotionError
from tests.helpers import ROOT, SAMPLE_ROOT, compose_cfg, quick_overrides


@pytest.fixture(scope="module")
def sample_soft_labels(tmp_path_factory):
    """The bundled model's probabilities on the sample's training faces, made by the script itself."""
    out = tmp_path_factory.mktemp("soft") / "sample.npz"
    cmd = [sys.executable, "experiments/make_soft_labels.py", "--root", str(SAMPLE_ROOT), "--out", str(out)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return out


def test_soft_label_file_is_small_checked_and_aligned(sample_soft_labels, tmp_path):
    dm = FER2013DataModule(str(SAMPLE_ROOT), cache_dir=None, num_workers=0)
    dm.setup()
    images, labels = dm.arrays["train"]
    probs = load_soft_labels(sample_soft_labels, images, labels)
    assert probs.shape == (len(labels), 7) and np.allclose(probs.sum(1), 1, atol=1e-3)
    assert (probs.argmax(1) == labels).mean() > 0.5  # the teacher knows these faces
    assert sample_soft_labels.stat().st_size < 2 * len(labels) * 7 + 2_000  # fp16, compressed
    assert sample_soft_labels.with_suffix(".json").is_file()  # how it was made
    # Rows are matched to faces by position: a file made for other faces is refused.
    with pytest.raises(EmotionError, match="another training set"):
        load_soft_labels(sample_soft_labels, images[::-1], labels[::-1])
    other = save_soft_labels(tmp_path / "short.npz", probs[:-1], images[:-1], labels[:-1], ["t"])
    with pytest.raises(EmotionError, match="another training set"):
        load_soft_labels(other, images, labels)
    with pytest.raises(EmotionError, match="no such file"):
        load_soft_labels(tmp_path / "missing.npz", images, labels)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(EmotionError, match="not a soft-label file"):
        load_soft_labels(tmp_path / "bad.npz", images, labels)
    assert faces_fingerprint(images, labels) != faces_fingerprint(images, (labels + 1) % 7)


def test_dataset_yields_teacher_probabilities_for_train_only(sample_soft_labels):
    dm = FER2013DataModule(str(SAMPLE_ROOT), cache_dir=None, num_workers=0, soft_labels=str(sample_soft_labels))
    x, y, soft = dm.dataset("train")[3]
    assert x.shape == (1, 48, 48) and soft.shape == (7,) and float(soft.sum()) == pytest.approx(1, abs=1e-3)
    assert len(dm.dataset("val")[0]) == 2


def test_student_trains_from_the_file(sample_soft_labels, tmp_path):
    from emotion.train import train

    cfg = compose_cfg(tmp_path, quick_overrides("model=vgg_tiny", "trainer.max_epochs=1", "model.input_size=40",
                                                f"data.soft_labels={sample_soft_labels}",
                                                "+model.distill={weight: 0.7, temperature: 3.0}",
                                                "model.mixup_alpha=0.2"))
    result = train(cfg)
    assert result.model.hparams.distill == {"weight": 0.7, "temperature": 3.0}
    assert np.isfinite(result.metrics["train/loss_epoch"]) and 0 <= result.metrics["val/acc"] <= 1
    ckpt = torch.load(result.record["checkpoint"], map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"]["distill"] == {"weight": 0.7, "temperature": 3.0}


def test_distill_term_is_hintons(tmp_path):
    from emotion.training.module import EmotionClassifier

    m = EmotionClassifier(arch="vgg_tiny", distill={"weight": 1.0, "temperature": 2.0})
    logits = torch.tensor([[2.0, 0.0, -1.0, 0, 0, 0, 0]])
    teacher = torch.softmax(logits, 1)  # the same distribution: no loss
    assert float(m._distill_loss(logits, teacher)) == pytest.approx(0, abs=1e-6)
    assert float(m._distill_loss(torch.zeros(1, 7), teacher)) > 0


def test_distill_without_teacher_file_is_one_line(tmp_path):
    cfg = compose_cfg(tmp_path, ["data=fer2013_sample", "+model.distill={weight: 0.5, temperature: 2.0}"],
                      resolve=False)
    with pytest.raises(ConfigError) as e:
        check_config(cfg, TRAIN_RULES)
    assert e.value.problems == ["model.distill needs the teacher's probabilities: pass data.soft_labels=<file> "
                                "(experiments/make_soft_labels.py) or data.soft_labels=ferplus (the FER+ votes)"]
