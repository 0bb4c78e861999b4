"""``python -m emotion.predict`` end to end: folders with bad files, videos, formats, exit codes."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emotion.checkpoint import export_model
from emotion.data.classes import CLASS_NAMES
from emotion.data.preprocess import to_fer_face
from emotion.inference import SCHEMA_VERSION, FaceEmotionPredictor
from emotion.inference.drivers.inputs import collect_inputs
from emotion.predict import main
from tests.helpers import SAMPLE_PHOTO, SAMPLE_ROOT, pan_clip, run_cli


def predict_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    # One intra-op thread: MTCNN's small convolutions gain nothing from more on a busy 2-core box.
    return run_cli("emotion.predict", *args, cwd=cwd, timeout=300, env={"OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def exported(tiny_checkpoint, tmp_path_factory) -> Path:
    return export_model(tiny_checkpoint, tmp_path_factory.mktemp("model") / "tiny")


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.startswith(".")]


def test_folder_with_corrupt_file_end_to_end(exported, tmp_path):
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    shutil.copy(SAMPLE_PHOTO, photos / "group.jpg")
    Image.new("RGB", (320, 240), (40, 120, 200)).save(photos / "sub" / "wall.png")  # no face
    (photos / "broken.jpg").write_text("not a jpeg at all\n")
    (photos / "cut.jpg").write_bytes(SAMPLE_PHOTO.read_bytes()[:3000])
    (photos / "notes.txt").write_text("ignored: not an image suffix\n")
    pan_clip(SAMPLE_PHOTO, photos / "clip.avi", frames=6, step=0)  # static: the test is about the plumbing
    out = tmp_path / "out"

    proc = predict_cli("photos", "missing.jpg", "--checkpoint", str(exported), "--out", str(out),
                   "--every", "3", "--annotate-video", "--device", "cpu", cwd=tmp_path)

    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 3
    for name in ("broken.jpg", "cut.jpg", "missing.jpg"):
        assert sum(name in line for line in errors) == 1
    assert "group.jpg" in proc.stdout and "6 faces" in proc.stdout and "no faces found" in proc.stdout

    data = json.loads((out / "predictions.json").read_text())
    assert data["schema_version"] == SCHEMA_VERSION and data["model"]["class_names"] == list(CLASS_NAMES)
    by_path = {}
    for r in data["results"]:
        by_path.setdefault(Path(r["path"]).name, []).append(r)
    assert len(by_path["group.jpg"][0]["faces"]) == 6 and by_path["wall.png"][0]["faces"] == []
    assert [r["frame"] for r in by_path["clip.avi"]] == [0, 3]  # every 3rd of 6 frames
    assert all(len(r["faces"]) == 6 for r in by_path["clip.avi"])
    assert by_path["clip.avi"][1]["time_s"] == pytest.approx(0.3)
    assert {Path(e["path"]).name for e in data["errors"]} == {"broken.jpg", "cut.jpg", "missing.jpg"}

    assert {p.name for p in out.iterdir()} == {"predictions.json", "group.png", "sub__wall.png",
                                               "clip_annotated.mp4", "clip_tracks.csv", "clip_timeline.png"}
    assert all(f["track"] >= 1 for f in by_path["clip.avi"][1]["faces"])  # confirmed by the second frame
    assert len(data["tracks"]) == 6 and {t["path"] for t in data["tracks"]} == {"photos/clip.avi"}
    assert Image.open(out / "group.png").width > Image.open(SAMPLE_PHOTO).width
    import cv2

    cap = cv2.VideoCapture(str(out / "clip_annotated.mp4"))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 2
    cap.release()
    assert no_temp_files(out)


def test_csv_no_faces_and_options_in_process(exported, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    blank = tmp_path / "blank.png"
    Image.new("L", (200, 150), 128).save(blank)
    out = tmp_path / "out"
    code = main([str(blank), str(SAMPLE_PHOTO), "--checkpoint", str(exported), "--out", str(out),
                 "--format", "csv", "--tta", "--no-align", "--min-face", "30", "--no-annotate",
                 "--device", "cpu"])
    assert code == 0
    std = capsys.readouterr()
    assert "no faces found" in std.out and std.err.count("error:") == 0
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert sorted(p.name for p in out.iterdir()) == ["errors.json", "predictions.csv"]  # --no-annotate: no PNGs
    assert json.loads((out / "errors.json").read_text()) == []
    assert rows[0]["path"] == str(blank) and rows[0]["face"] == ""
    faces = rows[1:]
    assert len(faces) == 6 and {r["predicted"] for r in faces} <= set(CLASS_NAMES)
    assert all(r["label"] in (r["predicted"], "uncertain") and 0 <= float(r["quality_overall"]) <= 1 for r in faces)
    for r in faces:
        assert abs(sum(float(r[f"p_{c}"]) for c in CLASS_NAMES) - 1) < 1e-4


def test_parquet_has_the_csv_rows_typed(exported, tmp_path, monkeypatch):
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed (pip install 'emotion[parquet]')")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    blank = tmp_path / "blank.png"
    Image.new("L", (200, 150), 128).save(blank)
    args = [str(blank), str(SAMPLE_PHOTO), "--checkpoint", str(exported), "--no-annotate", "--device", "cpu", "-q"]
    assert main([*args, "--out", str(tmp_path / "c"), "--format", "csv"]) == 0
    assert main([*args, "--out", str(tmp_path / "p"), "--format", "parquet"]) == 0
    rows = list(csv.DictReader((tmp_path / "c" / "predictions.csv").open()))
    table = pq.read_table(tmp_path / "p" / "predictions.parquet")
    assert table.column_names == list(rows[0])  # the same columns, in the same order
    assert str(table.schema.field("face").type) == "int32" and str(table.schema.field("p_happy").type) == "double"
    records = table.to_pylist()
    assert len(records) == len(rows) == 7 and records[0]["face"] is None and records[0]["label"] is None
    for want, got in zip(rows[1:], records[1:]):
        assert got["label"] == want["label"] and got["face"] == int(want["face"])
        assert got["x1"] == pytest.approx(float(want["x1"])) and got["p_sad"] == pytest.approx(float(want["p_sad"]))
    assert json.loads((tmp_path / "p" / "errors.json").read_text()) == []


def test_faces_are_crops_classifies_each_image_whole(exported, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    crops = tmp_path / "crops"
    crops.mkdir()
    for path in sorted((SAMPLE_ROOT / "test" / "happy").glob("*.jpg"))[:3]:
        shutil.copy(path, crops / path.name)  # 48×48 grey: too small for the detector
    with Image.open(path) as im:
        im.convert("RGB").resize((200, 200)).save(crops / "big_rgb.png")
    out = tmp_path / "out"
    assert main([str(crops), "--checkpoint", str(exported), "--out", str(out), "--faces-are-crops",
                 "--no-annotate", "--device", "cpu", "-q"]) == 0
    doc = json.loads((out / "predictions.json").read_text())
    assert doc["settings"]["faces_are_crops"] is True and len(doc["results"]) == 4
    predictor = FaceEmotionPredictor.from_checkpoint(exported, device="cpu")
    for r in doc["results"]:
        (face,) = r["faces"]
        w, h = r["size"]
        assert face["box"] == [0, 0, w, h] and face["score"] == 1 and face["landmarks"] is None  # no detector ran
        with Image.open(r["path"]) as im:
            expected = predictor.classify(to_fer_face(im)[None])[0]
        assert np.allclose([face["probabilities"][c] for c in CLASS_NAMES], expected, atol=1e-5)


def test_usage_errors_exit_2_without_traceback(tmp_path, capsys):
    assert main([str(SAMPLE_PHOTO), "--checkpoint", str(tmp_path / "nope.ckpt"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nope.ckpt" in err and err.count("\n") == 1
    (tmp_path / "afile").write_text("x")
    assert main([str(SAMPLE_PHOTO), "--out", str(tmp_path / "afile")]) == 2
    assert "is a file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # argparse's own usage errors
        main([str(SAMPLE_PHOTO), "--every", "0"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main([str(SAMPLE_PHOTO), "--min-face", "tiny"])
    assert e.value.code == 2 and "--min-face: 'tiny' is not an integer; give px or 'auto'" in capsys.readouterr().err
    # Ray writes Parquet only: another --format is refused, not silently replaced (#32 finding 7).
    assert main([str(SAMPLE_PHOTO), "--engine", "ray", "--format", "csv", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--engine ray writes Parquet only" in err and err.count("\n") == 1
    # Only missing inputs: reported, status 1, and no model is loaded for nothing.
    assert main([str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg"), "--checkpoint", "never-read"]) == 1
    assert capsys.readouterr().err.count("error:") == 2


def test_collect_inputs_names_and_exclusions(tmp_path):
    (tmp_path / "a" / "x").mkdir(parents=True)
    for rel in ("a/1.jpg", "a/x/1.jpg", "a/.hidden.jpg", "a/x/.tmp.png", "a/readme.md", "a/clip.MP4"):
        (tmp_path / rel).write_bytes(b"")
    (tmp_path / "a" / "out").mkdir()
    (tmp_path / "a" / "out" / "1.png").write_bytes(b"")
    jobs, errors = collect_inputs([str(tmp_path / "a"), str(tmp_path / "a" / "1.jpg"), str(tmp_path / "zz")],
                                  exclude=tmp_path / "a" / "out")
    assert [(j.path.relative_to(tmp_path).as_posix(), j.kind, j.name) for j in jobs] == [
        ("a/1.jpg", "image", "1"), ("a/clip.MP4", "video", "clip"), ("a/x/1.jpg", "image", "x__1"),
        ("a/1.jpg", "image", "1-2")]
    assert len(errors) == 1 and "zz" in errors[0][1]
