"""Choosing ensemble members on PublicTest: the greedy selection, and the script on the bundled models."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from tests.helpers import ROOT, SAMPLE_ROOT

sys.path.insert(0, str(ROOT / "experiments"))
from ensemble_select import greedy  # noqa: E402


def _onehot(classes, confidence):
    p = np.full((len(classes), 7), (1 - confidence) / 6)
    p[np.arange(len(classes)), classes] = confidence
    return p


def test_greedy_adds_the_member_that_errs_differently():
    labels = np.array([0, 1, 2, 3, 4, 5])
    wrong = (labels + 1) % 7
    # a and b are each right on one half, sure where right and unsure where wrong; c copies a.
    a = np.where((labels < 3)[:, None], _onehot(labels, 0.9), _onehot(wrong, 0.4))
    b = np.where((labels >= 3)[:, None], _onehot(labels, 0.9), _onehot(wrong, 0.4))
    steps = greedy([a, a.copy(), b], labels)
    assert [s["members"] for s in steps] == [[0], [0, 2]]
    assert [s["val_acc"] for s in steps] == [0.5, 1.0]


def test_the_script_scores_and_compares_candidates_on_publictest_only(tmp_path):
    out = tmp_path / "select"
    cmd = [sys.executable, "experiments/ensemble_select.py", "default", "fast", "--root", str(SAMPLE_ROOT),
           "--out", str(out)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rec = json.loads(out.with_suffix(".json").read_text())
    assert rec["faces"] == 70 and [c["arch"] for c in rec["candidates"]] == ["vgg_slim", "vgg_tiny"]
    d = np.array(rec["disagreement"])
    assert d.shape == (2, 2) and (np.diag(d) == 0).all() and d[0, 1] == d[1, 0] and 0 < d[0, 1] < 0.5
    best = max(c["val_acc"] for c in rec["candidates"])
    assert rec["greedy"][0]["val_acc"] == best and rec["chosen"]
    assert "split=test" in rec["test_command"] and all(c in rec["test_command"] for c in rec["chosen"])
    assert "Pairwise disagreement" in out.with_suffix(".md").read_text()
