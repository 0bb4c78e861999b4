"""Folder prediction under load (issue #7): 1,000 images with a few corrupt ones among them. Every
good image gets its result, each bad one is reported, and the exit code says partial failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from emotion.data.classes import CLASS_NAMES
from tests.helpers import ROOT, SAMPLE_ROOT, needs_bundled, png_header

FACES = sorted(SAMPLE_ROOT.rglob("*.jpg"))  # 420 real 48×48 FER2013 faces


def make_folder(root: Path, n_good: int) -> tuple[list[Path], list[Path]]:
    """``n_good`` faces (the sample's, mirrored on the second pass, 160×160 so MTCNN sees them; JPEG
    and PNG alternately, 100 to a subfolder) and five bad files spread among them."""
    good = []
    for i in range(n_good):
        face = Image.open(FACES[i % len(FACES)]).convert("L")
        if i // len(FACES) % 2:
            face = ImageOps.mirror(face)
        img = face.resize((160, 160), Image.Resampling.BICUBIC)
        sub = root / f"{i // 100:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"face_{i:04d}.{'png' if i % 2 else 'jpg'}"
        img.save(path)
        good.append(path)
    jpeg = good[0].read_bytes()
    bad_files = {
        "random.jpg": np.random.default_rng(0).bytes(4096),
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "empty.png": b"",
        "notes.png": b"not an image, just text\n",
        "bomb.png": png_header(100_000, 100_000),  # 30 GB as RGB, in a few bytes
    }
    bad = []
    for k, (name, blob) in enumerate(bad_files.items()):
        path = root / f"{(k * 2) % max(1, n_good // 100):02d}" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)
        bad.append(path)
    return good, bad


def run_folder(tmp_path: Path, n_good: int) -> None:
    photos, out = tmp_path / "photos", tmp_path / "out"
    good, bad = make_folder(photos, n_good)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "emotion.predict", str(photos), "--out", str(out),
                           "--no-annotate", "-q", "--format", "json", "--device", "cpu"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)

    assert proc.returncode == 1, proc.stderr[-2000:]  # partial failure
    assert "Traceback" not in proc.stderr
    n = n_good + len(bad)
    assert f"{n} images, 0 videos:" in proc.stdout and f"; {len(bad)} errors ->" in proc.stdout

    data = json.loads((out / "predictions.json").read_text())
    counts = Counter(r["path"] for r in data["results"])
    assert set(counts) == {str(p) for p in good}  # every good image …
    assert set(counts.values()) == {1}  # … exactly once
    errors = {e["path"]: e["error"] for e in data["errors"]}
    assert set(errors) == {str(p) for p in bad} and len(data["errors"]) == len(bad)
    for p in bad:  # each bad one named in its message, and on one stderr line
        assert p.name in errors[str(p)]
        assert sum(line.startswith("error:") and str(p) in line for line in proc.stderr.splitlines()) == 1
    assert "decompression bomb" in errors[str(bad[-1])]

    # The pipeline really ran: most of these faces are found, each with a valid label.
    with_faces = [r for r in data["results"] if r["faces"]]
    assert len(with_faces) > 0.6 * n_good, len(with_faces)
    faces = [f for r in with_faces for f in r["faces"]]
    assert all(f["predicted"] in CLASS_NAMES and f["label"] in (f["predicted"], "uncertain") for f in faces)
    assert sorted(p.name for p in out.iterdir()) == ["predictions.json"]  # no temp files left


@needs_bundled
@pytest.mark.slow  # over a minute on 2 cores: the default suite must stay near 10 min
@pytest.mark.timeout(900)
def test_thousand_images_with_five_corrupt(tmp_path):
    """995 good images + 5 bad ones; ~30 s on a busy 2-core CPU (MTCNN at 160×160, one thread)."""
    run_folder(tmp_path, n_good=995)
