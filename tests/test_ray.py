"""``emotion.predict --engine ray`` (#25) on a real local Ray instance with 2 workers: the same rows as
the local engine, face for face, and a bad file as an error row without failing the job."""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image

from emotion.predict import main
from tests.helpers import SAMPLE_PHOTO, SAMPLE_ROOT

pytest.importorskip("ray", reason="Ray is not installed (pip install 'emotion[ray]'; make install brings it)")
pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed")

pytestmark = pytest.mark.slow  # a Ray instance per run: about 20 s each on 2 cores


def rows_of(path) -> list[dict]:
    return pq.read_table(path).to_pylist()


@pytest.mark.parametrize("crops", [False, True], ids=["photos", "sample_crops"])
def test_ray_engine_gives_the_local_engines_rows(tmp_path, crops):
    if crops:
        folder = tmp_path / "crops"
        shutil.copytree(SAMPLE_ROOT / "test", folder)
    else:
        folder = tmp_path / "photos"
        folder.mkdir()
        for i, size in enumerate(((672, 464), (500, 345), (1000, 690))):
            Image.open(SAMPLE_PHOTO).resize(size).save(folder / f"photo_{i}.png")
    (folder / "broken.jpg").write_bytes(SAMPLE_PHOTO.read_bytes()[:2000])
    extra = ["--faces-are-crops"] if crops else []
    assert main([str(folder), "--out", str(tmp_path / "local"), "--format", "parquet", "--no-annotate", "-q",
                 "--device", "cpu", *extra]) == 1  # the broken file
    assert main([str(folder), "--out", str(tmp_path / "ray"), "--engine", "ray", "--workers", "2", *extra]) == 1
    local, ray = rows_of(tmp_path / "local" / "predictions.parquet"), rows_of(tmp_path / "ray" / "predictions.parquet")
    errors = [r for r in ray if r["error"]]
    assert len(errors) == 1 and errors[0]["path"].endswith("broken.jpg") and "truncated" in errors[0]["error"]
    assert [e["path"] for e in json.loads((tmp_path / "local" / "errors.json").read_text())] == [errors[0]["path"]]
    ray = [r for r in ray if not r["error"]]
    assert len(ray) == len(local) and len(local) >= (140 if crops else 12)  # the sample's 140 test faces / photos

    def order(rows: list[dict]) -> list[dict]:
        return sorted(rows, key=lambda r: (r["path"], r["face"]))

    for a, b in zip(order(local), order(ray)):
        assert (a["path"], a["face"], a["label"]) == (b["path"], b["face"], b["label"])
        assert all(a[k] == pytest.approx(b[k], abs=1e-3) for k in a if k.startswith(("x", "y", "p_")))
