"""Video as an input: face tracks on labelled videos made from the sample faces, smoothing and
summaries, every output file, the DataFrame API, live sources and bad videos. Real parts throughout:
OpenCV-written videos, the real MTCNN, ByteTrack and the bundled classifier."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from emotion.data.classes import CLASS_NAMES
from emotion.inference import FaceEmotionPredictor
from emotion.inference.video.summaries import EmaSmoother, TrackLog
from emotion.predict import main
from experiments import tracking_check as tc
from tests.helpers import ROOT, run_cli


@pytest.fixture(scope="module")
def predictor():
    return FaceEmotionPredictor.from_checkpoint(device="cpu")


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, tuple[tc.Scene, Path]]:
    """Four labelled scenes of the tracking check, two seconds each, written as MJPG videos."""
    folder = tmp_path_factory.mktemp("videos")
    wanted = ("crossing", "crossing_diagonal", "occlusion", "leave_return")
    return {s.name: (s, tc.write_video(s, folder / f"{s.name}.avi")) for s in tc.scenes(2.0) if s.name in wanted}


@pytest.fixture(scope="module")
def every_frame(videos, predictor, tmp_path_factory) -> dict[str, dict]:
    """The tracking check's rows for these scenes, detecting every frame."""
    return {r["scene"]: r for r in tc.run([s for s, _ in videos.values()], tmp_path_factory.mktemp("tc"), 1,
                                          predictor)}


def test_tracking_check_small(every_frame):
    """The default suite's tracking check: recall, at most one ID switch per crossing, one track per
    face through an occlusion, and a new track for a face back after longer than the tracker's memory."""
    rows = every_frame
    for r in rows.values():
        assert r["recall"] >= 0.9, r
        assert r["false_positives"] <= 4, r  # a face that leaves is held for 0.12 s (3 frames)
    for name in ("crossing", "crossing_diagonal"):
        assert rows[name]["id_switches"] <= rows[name]["crossings"], rows[name]
    assert rows["occlusion"]["tracks_per_identity"] == 1.0 and rows["occlusion"]["id_switches"] == 0
    assert rows["leave_return"]["tracks_per_identity"] == 2.0  # 1.5 s away, past the 1 s memory


def test_refined_tracks_keep_the_faces_between_detections(videos, predictor, tmp_path):
    """Detecting every third frame, with each tracked face found again by MTCNN's last stage in the frames
    between: the tracking gates hold (every crossing keeps its ids, one track through the occlusion)
    and few faces are lost. Measured on this machine: recall 92.6-100 %, at most 5 false positives, the
    faces of a crossing being left to the tracker's hold while their boxes touch."""
    rows = {r["scene"]: r for r in tc.run([s for s, _ in videos.values()], tmp_path, 3, predictor, refine=True)}
    for r in rows.values():
        assert r["recall"] >= 0.88 and r["false_positives"] <= 8, r
    for name in ("crossing", "crossing_diagonal"):
        assert rows[name]["id_switches"] <= rows[name]["crossings"], rows[name]
    assert rows["occlusion"]["tracks_per_identity"] == 1.0 and rows["occlusion"]["id_switches"] == 0


def test_adaptive_schedule_tracks_as_every_frame_does(videos, predictor, every_frame, tmp_path):
    """The video default (a detection at least every 2nd frame, and whenever the tracks are unsettled) scores
    as detecting every frame does on these scenes (the full tracking check and the street clip:
    experiments/results/tracking_check.md, bench_video.md), while some frames are carried; a carried face
    keeps its track's last probabilities."""
    from emotion.inference.video import DETECT_EVERY, VideoOptions, iter_video_results

    assert DETECT_EVERY == 2 and VideoOptions().adaptive
    scenes = [s for s, _ in videos.values()]
    every = every_frame
    adaptive = {r["scene"]: r for r in tc.run(scenes, tmp_path, DETECT_EVERY, predictor, adaptive=True)}
    for name, r in adaptive.items():
        # within 1 %, or one face of these short scenes (crossing: 93 of 94 against 94)
        assert r["matched"] >= min(every[name]["matched"] - 1, 0.99 * every[name]["matched"]), (r, every[name])
        assert r["id_switches"] <= every[name]["id_switches"], (r, every[name])
        assert r["tracks_per_identity"] == every[name]["tracks_per_identity"], (r, every[name])
    _, clip = videos["occlusion"]
    results = [f.result for f in iter_video_results(predictor, clip)]
    carried = [i for i, r in enumerate(results) if r.faces and not any(f.detected for f in r.faces)]
    assert 0 < len(carried) < len(results)
    for i in carried:
        before = {f.track: f.probabilities for f in results[i - 1].faces}
        for f in results[i].faces:
            assert f.track in before and f.probabilities == before[f.track]


def test_tracker_says_when_the_tracks_are_unsettled():
    from emotion.inference.detection.detections import Detections
    from emotion.inference.video.tracker import FaceTracker

    def det(*boxes):
        return Detections(np.asarray(boxes, np.float64), np.full(len(boxes), 0.99), np.zeros((len(boxes), 5, 2)))

    size = (640, 360)
    t = FaceTracker(25.0)
    assert t.unsettled(0, size) == "no faces"
    t.update(0, det([300, 150, 340, 190]))
    assert t.unsettled(1, size) == "changed"  # a face has come
    t.update(1, det([300, 150, 340, 190]))
    assert t.unsettled(2, size) is None  # the same face, in the middle, alone: carry it
    for frame in (2, 3, 4):  # ByteTrack confirms a new face on its second detection: a change too
        t.update(frame, det([300, 150, 340, 190], [5, 150, 45, 190]))
    assert t.unsettled(5, size) is None  # near the border, but in view
    t.update(5, det([300, 150, 340, 190], [-10, 150, 30, 190]))
    t.update(6, det([300, 150, 340, 190], [-10, 150, 30, 190]))
    assert t.unsettled(7, size) == "edge"  # a face half out of view
    t = FaceTracker(25.0)
    for frame in (0, 1, 2):  # side by side, 12 px apart, moving together (a panning camera)
        t.update(frame, det([300 + 3 * frame, 150, 340 + 3 * frame, 190], [352 + 3 * frame, 150, 392 + 3 * frame, 190]))
    assert t.unsettled(3, size) is None
    t = FaceTracker(25.0)
    for frame in (0, 1, 2):  # the same two, drawing together by 4 px a frame (a tenth of a side): a crossing
        t.update(frame, det([296 + 2 * frame, 150, 336 + 2 * frame, 190], [360 - 2 * frame, 150, 400 - 2 * frame, 190]))
    assert t.unsettled(3, size) == "close"
    t.update(3, det([302, 150, 342, 190]))
    assert t.unsettled(4, size) == "changed"  # a face has gone (or was missed)


def test_smoother_follows_time_not_frames():
    ema = EmaSmoother(0.5)
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert np.allclose(ema(1, 0.0, a), a)
    after = ema(1, 0.5, b)  # one time constant later: 1 - 1/e of the way
    assert after[1] == pytest.approx(1 - np.exp(-1))
    assert np.allclose(ema(2, 0.5, b), b)  # another track starts afresh
    assert np.allclose(EmaSmoother(0)(1, 0.1, b), b) and np.allclose(ema(None, 1.0, a), a)


def test_track_log_segments_absorb_blips():
    names = ["happy", "sad"]
    log = TrackLog(names, path="v.mp4", min_segment_s=0.3)
    happy, sad = np.array([0.9, 0.1]), np.array([0.1, 0.9])
    for i, p in enumerate([happy] * 5 + [sad] + [happy] * 5 + [sad] * 10):
        log.add(7, i * 0.1, p, p, detected=True, score=0.99, crop=np.zeros((48, 48), np.uint8))
    (s,) = log.summaries()
    assert (s.track, s.frames, s.first_s, s.dominant) == (7, 21, 0.0, "sad")  # 11 of 21 frames
    assert [(g["label"], g["start_s"], round(g["end_s"], 1)) for g in s.segments] == [("happy", 0.0, 1.0),
                                                                                      ("sad", 1.1, 2.0)]
    assert s.mean["happy"] == pytest.approx((10 * 0.9 + 11 * 0.1) / 21)


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_predict_video_writes_tracks_summary_and_timeline(videos, tmp_path, capsys):
    _, clip = videos["crossing"]
    out = tmp_path / "out"
    assert main([str(clip), "--out", str(out), "--format", "csv", "--device", "cpu", "--smooth", "0.4"]) == 0
    assert "2 tracks" in capsys.readouterr().out
    rows = _rows(out / "predictions.csv")
    assert {r["track"] for r in rows} >= {"1", "2"} and all(r["frame"] != "" for r in rows)
    assert all(r["smooth_label"] in CLASS_NAMES and float(r["smooth_happy"]) >= 0 for r in rows)
    tracks = _rows(out / "crossing_tracks.csv")
    assert [t["track"] for t in tracks] == ["1", "2"]
    for t in tracks:
        assert int(t["frames"]) >= 40 and t["dominant"] in CLASS_NAMES
        first = t["segments"].split(";")[0].split()
        assert first[0] in CLASS_NAMES and first[1].startswith("0.00-")  # it starts with the track
        assert float(t["first_s"]) == 0.0 and float(t["last_s"]) > 1.8
        assert sum(float(t[f"mean_{c}"]) for c in CLASS_NAMES) == pytest.approx(1, abs=1e-4)
    png = (out / "crossing_timeline.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000

    # JSON: the per-frame faces carry their track, and the document the summaries.
    assert main([str(clip), "--out", str(tmp_path / "json"), "--device", "cpu", "--smooth", "off",
                 "--detect-every", "2", "--refine-tracks"]) == 0
    data = json.loads((tmp_path / "json" / "predictions.json").read_text())
    assert data["settings"]["detect_every"] == 2 and data["settings"]["refine"] is True
    assert data["settings"]["adaptive"] is True
    assert main([str(clip), "--out", str(tmp_path / "fixed"), "--device", "cpu", "--detect-every", "3",
                 "--no-adaptive"]) == 0
    fixed = json.loads((tmp_path / "fixed" / "predictions.json").read_text())
    assert fixed["settings"]["adaptive"] is False
    assert [any(f["detected"] for f in r["faces"]) for r in fixed["results"][:6]] == [True, False, False] * 2
    assert data["settings"]["smooth_s"] == 0 and [t["track"] for t in data["tracks"]] == [1, 2]
    face = data["results"][5]["faces"][0]
    assert face["track"] in (1, 2) and face["smoothed"] == face["probabilities"]  # smoothing off: the raw series

    pq = pytest.importorskip("pyarrow.parquet")
    assert main([str(clip), "--out", str(tmp_path / "pq"), "--format", "parquet", "--device", "cpu"]) == 0
    table = pq.read_table(tmp_path / "pq" / "predictions.parquet")
    assert str(table.schema.field("track").type) == "int64" and str(table.schema.field("detected").type) == "bool"


def test_video_result_as_dataframe_matches_the_csv(videos, predictor, tmp_path):
    _, clip = videos["occlusion"]
    result = predictor.video(clip, smooth_s=0.5)
    df = result.to_pandas()
    assert len(df) == sum(max(1, len(f.faces)) for f in result.frames)
    assert str(df["track"].dtype) == "Int64" and str(df["p_happy"].dtype) == "Float64"
    assert df["track"].dropna().unique().tolist() == [1]
    tracks = result.tracks_pandas()
    assert tracks["track"].tolist() == [1] and tracks["frames"].iloc[0] == int(df["track"].notna().sum())
    assert main([str(clip), "--out", str(tmp_path), "--format", "csv", "--device", "cpu", "-q"]) == 0
    rows = _rows(tmp_path / "predictions.csv")
    assert [r["track"] for r in rows] == df["track"].astype("string").fillna("").tolist()
    assert [r["label"] for r in rows] == df["label"].fillna("").tolist()


def _run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return run_cli("emotion.predict", *args, timeout=timeout)


def test_bad_videos_one_line_each_the_rest_processed(videos, tmp_path):
    bad = tmp_path / "in"
    bad.mkdir()
    (bad / "empty.mp4").write_bytes(b"")
    (bad / "noise.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    _, clip = videos["crossing"]
    data = clip.read_bytes()
    (bad / "cut.avi").write_bytes(data[: len(data) // 2])  # the index says 50 frames; half of them are there
    (bad / "good.avi").write_bytes(data)
    out = tmp_path / "out"
    proc = _run(str(bad), "--out", str(out), "--format", "csv", "--device", "cpu")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 3, proc.stderr
    for name in ("empty.mp4", "noise.mp4", "cut.avi"):
        assert sum(name in line for line in errors) == 1, errors
    assert any("decoding stopped at frame" in line and "cut.avi" in line for line in errors)
    rows = _rows(out / "predictions.csv")
    cut = [r for r in rows if r["path"].endswith("cut.avi")]
    good = [r for r in rows if r["path"].endswith("good.avi")]
    assert 5 <= len({r["frame"] for r in cut}) < 50 and len({r["frame"] for r in good}) == 50
    assert _rows(out / "cut_tracks.csv") and _rows(out / "good_tracks.csv")  # the frames read are summarised
    assert json.loads((out / "errors.json").read_text())[0]["path"].endswith(("cut.avi", "empty.mp4", "noise.mp4"))
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # nothing half-written


def _fast_clip(scene: tc.Scene, path: Path, fps: float, repeat: int = 1) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, tc.SIZE)
    for _ in range(repeat):
        for img in scene.frames:
            writer.write(cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_live_mode_drops_frames_rather_than_lag(videos, tmp_path):
    """A file played at its own frame rate (here 250 fps, faster than the analysis) stands in for a
    camera: frames the analysis has no time for are dropped and counted, rows stream as they come."""
    scene, _ = videos["crossing"]
    clip = _fast_clip(scene, tmp_path / "fast.avi", fps=250.0)
    out = tmp_path / "out"
    proc = _run(str(clip), "--live", "--out", str(out), "--format", "csv", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    dropped = int(proc.stdout.split(" dropped")[0].rsplit(", ", 1)[1])
    analysed = int(proc.stdout.split(" frames analysed")[0].rsplit(" ", 1)[1])
    # Counted in frames, not seconds (#32): at 250 fps no 2-core machine keeps up, so some are dropped.
    assert dropped > 0 and analysed + dropped == 50, proc.stdout
    streamed = _rows(out / "fast_frames.csv")
    assert len(streamed) == len(_rows(out / "predictions.csv")) and len({r["frame"] for r in streamed}) == analysed


def test_live_stream_interrupted_keeps_complete_files(videos, tmp_path):
    """Ctrl-C on a live source: exit 130, and every file holds complete rows up to that moment."""
    scene, _ = videos["crossing"]
    clip = _fast_clip(scene, tmp_path / "long.avi", fps=25.0, repeat=8)  # 16 s at its own pace
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, "-m", "emotion.predict", str(clip), "--live", "--out", str(out),
                             "--format", "csv", "--device", "cpu"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    streamed = out / "long_frames.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not streamed.exists() or len(streamed.read_text().splitlines()) < 10):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    header = streamed.read_text().splitlines()[0].split(",")
    rows = _rows(streamed)
    assert len(rows) >= 9 and all(len(r) == len(header) and None not in r.values() for r in rows)
    assert len(_rows(out / "predictions.csv")) == len(rows)
    assert _rows(out / "long_tracks.csv") and (out / "long_timeline.png").stat().st_size > 0


def test_ctrl_c_inside_a_frames_bookkeeping_waits_for_it():
    """A Ctrl-C between a frame's results row and its streamed row is held until both are written."""
    from emotion.inference.drivers.session import _ctrl_c_deferred

    done = []
    with pytest.raises(KeyboardInterrupt):
        with _ctrl_c_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            done.append("results")
            time.sleep(0.05)
            done.append("stream")
    assert done == ["results", "stream"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_stream_url_is_a_live_source(videos, tmp_path):
    """An http stream from a real server on 127.0.0.1: read live, rows streamed, its end reported."""
    import socket

    _, clip = videos["occlusion"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                               "--directory", str(clip.parent)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        out = tmp_path / "out"
        proc = _run(f"http://127.0.0.1:{port}/{clip.name}", "--out", str(out), "--format", "csv", "--device", "cpu")
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "the source closed" in proc.stdout and "dropped" in proc.stdout
    name = f"127_0_0_1_{port}_occlusion_avi"
    streamed = _rows(out / f"{name}_frames.csv")
    assert streamed and len(streamed) == len(_rows(out / "predictions.csv"))
    # Read live, the frames the analysis had no time for are dropped, more of them on a busy machine; a face
    # that moved far between two analysed frames may then start a second track. Not what this test is about.
    tracks = _rows(out / f"{name}_tracks.csv")
    assert tracks and tracks[0]["track"] == "1"
    assert {r["track"] for r in streamed} <= {t["track"] for t in tracks} | {"-1", ""}
