"""Crash canary (#26): every registered model takes a few training steps at an odd and an even
batch size, in the precision and memory format the trainer picks on this CPU, each in its own
process, so a segfault in oneDNN fails that case with its exit code instead of killing pytest."""

from __future__ import annotations

import subprocess
import sys

import pytest

from emotion.models import list_models
from tests.helpers import ROOT

BATCHES = ("37", "1", "8")  # FER2013's last batch at batch size 64, the smallest, and an even one
#: timm architectures through the same rule (`model=timm model.name=…`): a ResNet-D and a ConvNeXt stem.
# resnet26d, the slowest to build, in the slow suite (CI runs it too); convnext_atto stays in the default one.
TIMM = [pytest.param("timm/resnet26d", marks=pytest.mark.slow), "timm/convnext_atto"]
#: resnet34 (11 s) too: resnet18 keeps the ResNet stem in the default suite, which must stay under 10 minutes.
OWN = [pytest.param(m, marks=pytest.mark.slow) if m == "resnet34" else m for m in list_models()]


def train_steps(model: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "tests/helpers/train_steps.py", model, *BATCHES, *extra], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("model", OWN + TIMM)
def test_training_steps_do_not_crash(model):
    proc = train_steps(model)
    assert proc.returncode == 0, f"{model} exited {proc.returncode}:\n{proc.stderr[-2000:]}"
    assert "ok" in proc.stdout


def test_the_canary_catches_the_crash_when_the_unsafe_path_is_forced():
    """Shows that the canary can fail: mini_xception channels-last is the path that crashed on
    AMD Zen 4/5. Where this CPU does not crash on it, there is nothing to show."""
    proc = train_steps("mini_xception", "--force-channels-last")
    if proc.returncode == 0:
        pytest.skip("this CPU trains mini_xception channels-last without crashing")
    assert proc.returncode < 0 or proc.returncode in (134, 139), proc.stderr[-2000:]
