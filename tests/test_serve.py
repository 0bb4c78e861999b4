"""The prediction service (#24), a real server on 127.0.0.1 driven by a real HTTP client (httpx) and a
real headless browser: answers, batching, load, bad uploads, API key, SIGTERM."""

from __future__ import annotations

import base64
import io
import json
import shutil
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest
from PIL import Image

from emotion.inference import SCHEMA_VERSION, FaceEmotionPredictor
from emotion.service.app import QUERY_OPTIONS
from emotion.service.process import ServerProcess
from tests.helpers import ROOT, SAMPLE_PHOTO, SHARED_PHOTOS, pan_clip, png_header

GROUP = SHARED_PHOTOS / "group_of_six.jpg"
ARTIFACTS = ROOT / "outputs" / "test_artifacts"


def log_problems(server: ServerProcess) -> list[str]:
    return [line for line in server.log().splitlines() if "Traceback" in line or "ERROR" in line]


@pytest.fixture(scope="module")
def server():
    with ServerProcess(["--api-key", ""]) as s:
        yield s
    assert not log_problems(s), s.log()


def test_predict_answers_with_the_predictors_faces(server):
    data = SAMPLE_PHOTO.read_bytes()
    raw = httpx.post(server.url + "/predict", content=data, timeout=60)
    form = httpx.post(server.url + "/predict", files={"file": ("x.bin", data, "text/plain")}, timeout=60)
    assert raw.status_code == 200 and form.status_code == 200, (raw.text, form.text)
    mine = FaceEmotionPredictor.from_checkpoint()(SAMPLE_PHOTO).to_dict()
    for body in (raw.json(), form.json()):
        assert body["schema_version"] == SCHEMA_VERSION and body["size"] == [672, 464]
        assert len(body["faces"]) == len(mine["faces"]) == 6
        for theirs, ours in zip(body["faces"], mine["faces"]):
            assert set(theirs) == set(ours)  # the same per-face JSON as predictions.json
            assert theirs["box"] == ours["box"] and theirs["label"] == ours["label"]
            assert max(abs(theirs["probabilities"][k] - v) for k, v in ours["probabilities"].items()) < 0.02


def test_query_options_crops_and_refusals(server):
    url = server.url + "/predict"
    face = next((ROOT / "emotion/assets/fer2013_sample/test/happy").glob("*.jpg")).read_bytes()
    body = httpx.post(url + "?faces_are_crops=true&tta=flip&crops=true", content=face, timeout=60).json()
    (f,) = body["faces"]
    assert body["tta"] == "flip" and f["box"] == [0, 0, 48, 48] and f["landmarks"] is None
    assert Image.open(io.BytesIO(base64.b64decode(f["crop_png"]))).size == (48, 48)
    for query, word in (("tta=sideways", "tta"), ("min_face=3", "min_face"), ("colour=1", "colour"),
                        ("faces_are_crops=maybe", "faces_are_crops"), ("min_quality=2", "min_quality"),
                        ("abstain=often", "abstain"), ("explain=please", "explain")):
        r = httpx.post(f"{url}?{query}", content=face, timeout=30)
        assert r.status_code == 400 and word in r.json()["error"], (query, r.text)
        assert r.json()["error"].count("\n") == 0  # one line, not FastAPI's list of validation errors
    assert httpx.get(server.url + "/nowhere").json()["error"].startswith("no such page")
    assert httpx.get(url).status_code == 405
    health = httpx.get(server.url + "/health").json()
    assert health["status"] == "ok" and health["model"]["checkpoint"] == "bundled"
    assert "POST /predict" in httpx.get(server.url + "/docs").text
    spec = httpx.get(server.url + "/openapi.json").json()
    # The query options are typed parameters, so the schema lists them (#32).
    assert {p["name"] for p in spec["paths"]["/predict"]["post"]["parameters"]} == set(QUERY_OPTIONS)


def test_trust_options_hold_back_and_explain(server):
    """#34 through the service: the thresholds per request, and each face's saliency overlay as a data URL."""
    url = server.url + "/predict"
    data = SAMPLE_PHOTO.read_bytes()
    held = httpx.post(url + "?abstain=1", content=data, timeout=60).json()["faces"]
    assert {(f["label"], f["uncertain"]) for f in held} == {("uncertain", "confidence")}
    named = httpx.post(url + "?abstain=0&min_quality=0", content=data, timeout=60).json()["faces"]
    assert all(f["label"] == f["predicted"] and f["quality"]["overall"] > 0 for f in named)
    explained = httpx.post(url + "?explain=1", content=data, timeout=120).json()["faces"]
    assert len(explained) == 6
    for f in explained:
        head, _, b64 = f["explanation"].partition(",")
        assert head == "data:image/png;base64" and Image.open(io.BytesIO(base64.b64decode(b64))).size == (144, 144)


def test_bad_uploads_are_refused_and_leave_memory_bounded(tmp_path):
    good = SAMPLE_PHOTO.read_bytes()
    jpeg = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (600, 800, 3), np.uint8)).save(jpeg, "JPEG")
    bad = {
        "non-image bytes": ({"content": b"%PDF-1.4 not an image at all" * 10}, 400, "not an image"),
        "truncated JPEG": ({"content": jpeg.getvalue()[:5000]}, 400, "truncated"),
        "30000x30000 PNG": ({"content": png_header(30000, 30000)}, 413, "decompression bomb"),
        "empty body": ({"content": b""}, 400, "empty"),
        "wrong field name": ({"files": {"photo": ("a.jpg", good, "image/jpeg")}}, 400, "no field 'file'"),
        "oversized body": ({"content": b"\xff" * 3_000_001}, 413, "larger than"),
    }
    with ServerProcess(["--max-body-mb", "3"]) as server:
        proc = psutil.Process(server.proc.pid)
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for _ in range(5):
                assert client.post("/predict", content=good).status_code == 200
            after_good = proc.memory_info().rss
            for name, (kwargs, status, words) in bad.items():
                for _ in range(3):
                    r = client.post("/predict", **kwargs)
                    assert r.status_code == status, (name, r.status_code, r.text)
                    assert words in r.json()["error"], (name, r.json())
            # A chunked upload without Content-Length is cut off at the limit while streaming.
            chunks = (b"\0" * 1_000_000 for _ in range(5))
            r = client.post("/predict", content=chunks)
            assert r.status_code == 413, r.text
            assert client.post("/predict", content=good).status_code == 200  # still serving
            peak = int(next(line.split()[1] for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                            if line.startswith("VmHWM"))) * 1024
        assert peak <= 1.5 * after_good, f"peak RSS {peak / 1e6:.0f} MB, after good requests {after_good / 1e6:.0f} MB"
    assert not log_problems(server), server.log()


def test_load_16_clients_every_request_answered_and_batched():
    """16 clients, 400 requests: each is answered 200 or 503 (with Retry-After), none is lost, and
    the faces of concurrent requests were classified together. Throughput and latency are measured by
    experiments/bench_serve.py, not here (#32)."""
    data = SAMPLE_PHOTO.read_bytes()
    with ServerProcess(["--max-pending", "12", "--batch-wait-ms", "5"]) as server:
        statuses = []
        lock = threading.Lock()

        def client(n: int) -> None:
            with httpx.Client(base_url=server.url, timeout=60) as c:
                for _ in range(n):
                    r = c.post("/predict", content=data)
                    with lock:
                        statuses.append(r.status_code)
                        if r.status_code == 200:
                            assert len(r.json()["faces"]) == 6
                        else:
                            assert r.headers.get("retry-after") and "busy" in r.json()["error"]

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(client, [25] * 16))
        health = httpx.get(server.url + "/health").json()
    assert len(statuses) == 400 and set(statuses) <= {200, 503}, sorted(set(statuses))
    assert statuses.count(200) >= 100
    assert health["served"] == statuses.count(200) and health["pending"] == 0
    assert health["batching"]["largest_batch"] > 6  # more than one request's faces in a batch
    assert not log_problems(server), server.log()


def test_api_key_is_required_when_set():
    with ServerProcess(["--api-key", "s3cret"]) as server:
        data = SAMPLE_PHOTO.read_bytes()
        assert httpx.get(server.url + "/health").status_code == 200
        r = httpx.post(server.url + "/predict", content=data, timeout=60)
        assert r.status_code == 401 and "API key" in r.json()["error"]
        assert httpx.post(server.url + "/predict", content=data, headers={"X-API-Key": "wrong"}).status_code == 401
        ok = httpx.post(server.url + "/predict", content=data, headers={"X-API-Key": "s3cret"}, timeout=60)
        assert ok.status_code == 200


def test_sigterm_finishes_requests_in_flight_and_exits_cleanly():
    data = SAMPLE_PHOTO.read_bytes()
    server = ServerProcess(["--threads", "1"]).start()
    children = psutil.Process(server.proc.pid).children(recursive=True)
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(httpx.post, server.url + "/predict", content=data, timeout=60) for _ in range(6)]
        time.sleep(0.3)  # the requests are in
        server.proc.send_signal(signal.SIGTERM)
        codes = [f.result().status_code for f in futures]
    assert server.proc.wait(timeout=60) in (0, -signal.SIGTERM, 143)
    assert codes == [200] * 6
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert "Traceback" not in server.log(), server.log()


def test_sigterm_ends_a_running_video_job_and_exits(tmp_path):
    """Jobs do not outlive the server: SIGTERM during a long job ends it at its next frame, and the server
    exits at once rather than after the video."""
    clip = pan_clip(SAMPLE_PHOTO, tmp_path / "long.avi", frames=900, step=0).read_bytes()  # minutes of work
    server = ServerProcess([]).start()
    try:
        job = httpx.post(server.url + "/predict/video", content=clip, timeout=60).json()["id"]
        with httpx.Client(base_url=server.url, timeout=60) as c:
            while c.get(f"/jobs/{job}").json()["frames_done"] < 3:
                time.sleep(0.1)
        server.proc.send_signal(signal.SIGTERM)
        # Well before the job could finish (900 frames of six faces: ~10 frames/s here).
        assert server.proc.wait(timeout=30) in (0, -signal.SIGTERM, 143)
        assert "Traceback" not in server.log(), server.log()
    finally:
        if server.proc.poll() is None:
            server.stop()


def _chrome():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


needs_chrome = pytest.mark.skipif(_chrome() is None or shutil.which("chromedriver") is None,
                                  reason="no chromium and chromedriver (make browser installs Debian's)")


def _driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _chrome()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                "--disable-gpu"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


@pytest.mark.skipif(not GROUP.is_file(), reason="../shared/photos/group_of_six.jpg is not here")
@needs_chrome
def test_page_in_headless_chromium_shows_the_six_faces(server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _driver()
    try:
        driver.get(server.url + "/")
        driver.find_element(By.ID, "file").send_keys(str(GROUP))
        WebDriverWait(driver, 90).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-faces"))
        assert driver.find_element(By.TAG_NAME, "body").get_attribute("data-faces") == "6", \
            driver.find_element(By.ID, "status").text
        labels = [e.get_attribute("data-label") for e in driver.find_elements(By.CSS_SELECTOR, ".face .label")]
        assert len(labels) == 6 and all(labels)
        crops = driver.find_elements(By.CSS_SELECTOR, ".face img")
        assert all(c.get_attribute("src").startswith("data:image/png;base64,") for c in crops)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "serve_page.png"))
        # A click on a face shows where the model looked (#34), in place of its crop.
        before = crops[0].get_attribute("src")
        driver.find_elements(By.CSS_SELECTOR, ".face")[0].click()
        WebDriverWait(driver, 90).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".face.explained"))
        shown = driver.find_elements(By.CSS_SELECTOR, ".face img")[0].get_attribute("src")
        assert shown.startswith("data:image/png;base64,") and shown != before
        assert driver.save_screenshot(str(ARTIFACTS / "serve_page_explained.png"))
        assert driver.get_log("browser") == [] or all(e["level"] != "SEVERE" for e in driver.get_log("browser"))
    finally:
        driver.quit()


def test_batcher_classifies_concurrent_submissions_in_one_batch_with_the_same_answers():
    from emotion.data.sources.fer2013 import _decode
    from emotion.service import FaceBatcher

    predictor = FaceEmotionPredictor.from_checkpoint(bf16=False)  # fp32: batch-independent to 1e-5
    files = sorted((ROOT / "emotion/assets/fer2013_sample/test").rglob("*.jpg"))[:9]
    faces = np.stack([_decode(str(p)) for p in files])
    parts = [faces[:2], faces[2:3], faces[3:9]]
    batcher = FaceBatcher(predictor.classify_many, max_wait_ms=200, in_flight=lambda: len(parts))
    try:
        futures = [batcher.submit(p) for p in parts]
        results = [f.result(timeout=30) for f in futures]
    finally:
        batcher.close()
    assert batcher.stats()["batches"] == 1 and batcher.stats()["largest_batch"] == 9
    for part, probs in zip(parts, results):
        assert np.allclose(probs, predictor.classify(part), atol=1e-5)


def test_a_request_past_its_timeout_gets_504_and_frees_its_slot():
    data = (GROUP if GROUP.is_file() else SAMPLE_PHOTO).read_bytes()
    with ServerProcess(["--timeout", "0.01", "--threads", "1"]) as server:
        r = httpx.post(server.url + "/predict?min_face=20", content=data, timeout=60)
        assert r.status_code == 504 and "not processed within 0.01 s" in r.json()["error"]
        deadline = time.monotonic() + 30
        while httpx.get(server.url + "/health").json()["pending"] and time.monotonic() < deadline:
            time.sleep(0.1)  # the shielded work ends, then its slot is free
        assert httpx.get(server.url + "/health").json()["pending"] == 0
    assert not log_problems(server), server.log()


# -- videos through the service (#34) -----------------------------------------------------------
def wait_for_job(client: httpx.Client, job_id: str, timeout_s: float = 180) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = client.get(f"/jobs/{job_id}").json()
        assert status["frames_done"] <= (status["frames_total"] or 10**9)
        if status["state"] in ("done", "error"):
            return status
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not finished in {timeout_s} s: {status}")


def _rows_without_path(results: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "path"} for r in results]


def test_video_job_gives_the_clis_rows_tracks_and_timeline(server, tmp_path):
    clip = pan_clip(SAMPLE_PHOTO, tmp_path / "walk.avi")
    with httpx.Client(base_url=server.url, timeout=60) as client:
        queued = client.post("/predict/video?smooth=0.5", files={"file": ("walk.avi", clip.read_bytes())})
        assert queued.status_code == 202, queued.text
        job_id = queued.json()["id"]
        status = wait_for_job(client, job_id)
        assert status["state"] == "done" and status["frames_done"] == status["frames_total"] == 12, status
        timeline = client.get(f"/jobs/{job_id}/timeline.png")
        assert timeline.status_code == 200 and timeline.content.startswith(b"\x89PNG")
    # The same clip through the CLI: the same rows (but the path) and the same tracks.
    from emotion.predict import main as predict_main

    assert predict_main([str(clip), "--out", str(tmp_path / "cli"), "-q"]) == 0
    cli = json.loads((tmp_path / "cli" / "predictions.json").read_text())
    assert status["schema_version"] == cli["schema_version"] and status["settings"] == cli["settings"]
    theirs, ours = _rows_without_path(status["results"]), _rows_without_path(cli["results"])
    assert len(theirs) == len(ours) == 12
    for a, b in zip(theirs, ours):
        assert [f["box"] for f in a["faces"]] == [f["box"] for f in b["faces"]]
        assert [(f["track"], f["label"]) for f in a["faces"]] == [(f["track"], f["label"]) for f in b["faces"]]
    assert [(t["track"], t["dominant"], t["frames"]) for t in status["tracks"]] == \
        [(t["track"], t["dominant"], t["frames"]) for t in cli["tracks"]]
    assert {r["path"] for r in status["results"]} == {"upload"}  # never the server's temporary file


def test_bad_videos_and_limits_are_refused_and_the_server_keeps_serving(tmp_path):
    clip = pan_clip(SAMPLE_PHOTO, tmp_path / "walk.avi", frames=8).read_bytes()
    long_clip = pan_clip(SAMPLE_PHOTO, tmp_path / "long.avi", frames=40, step=1).read_bytes()
    args = ["--max-video-frames", "30", "--max-video-jobs", "1", "--keep-jobs", "1", "--max-video-mb", "3"]
    with ServerProcess(args) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        for name, body, status, words in (
                ("zero bytes", b"", 400, "empty"), ("not a video", b"hello, not a video\n" * 50, 400, "not a video"),
                ("a JPEG", SAMPLE_PHOTO.read_bytes(), 400, "not a video"),
                ("too many frames", long_clip, 413, "40 frames, above the 30 limit"),
                ("too big", b"\0" * 3_000_001, 413, "larger than the 3 MB limit; send a smaller video")):
            r = client.post("/predict/video", content=body)
            assert r.status_code == status and words in r.json()["error"], (name, r.status_code, r.text)
            assert r.json()["error"].count("\n") == 0
        for query, word in (("every=0", "every"), ("speed=2", "speed")):
            r = client.post(f"/predict/video?{query}", content=clip)
            assert r.status_code == 400 and word in r.json()["error"], r.text
        assert client.get("/jobs/nope").status_code == 404 and "no job" in client.get("/jobs/nope").json()["error"]
        # A truncated clip: refused, or a job that ends in an error or in the frames it had; never a crash.
        cut = client.post("/predict/video", content=clip[: len(clip) // 3])
        if cut.status_code == 202:
            assert wait_for_job(client, cut.json()["id"])["state"] in ("done", "error")
        else:
            assert cut.status_code == 400
        # One job at a time: a second while the first runs is told to retry.
        first = client.post("/predict/video", content=clip).json()["id"]
        second = client.post("/predict/video", content=clip)
        assert second.status_code == 429 and second.headers.get("retry-after"), second.text
        busy = client.get(f"/jobs/{first}/timeline.png")
        assert busy.status_code in (200, 409)  # 409 while it runs: "ask again when its state is done"
        assert wait_for_job(client, first)["state"] == "done"
        later = client.post("/predict/video", content=clip).json()["id"]
        assert wait_for_job(client, later)["state"] == "done"
        assert client.get(f"/jobs/{first}").status_code == 404  # evicted: one finished job kept
        assert client.post("/predict", content=SAMPLE_PHOTO.read_bytes()).status_code == 200  # still serving
        assert client.get("/health").json()["video_jobs"]["evicted"] >= 1
    assert not log_problems(server), server.log()


@needs_chrome
def test_page_in_headless_chromium_runs_a_video_job(server, tmp_path):
    """#34: drop a video on the page: a progress bar, then the per-person timeline and the table of tracks."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    clip = pan_clip(SAMPLE_PHOTO, tmp_path / "walk.avi")
    driver = _driver()
    try:
        driver.get(server.url + "/")
        driver.find_element(By.ID, "file").send_keys(str(clip))
        WebDriverWait(driver, 180).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-tracks"))
        tracks = driver.find_element(By.TAG_NAME, "body").get_attribute("data-tracks")
        assert tracks not in ("", "error") and int(tracks) >= 1, driver.find_element(By.ID, "status").text
        rows = driver.find_elements(By.CSS_SELECTOR, "#tracks tbody tr")
        assert len(rows) == int(tracks) and all(r.find_elements(By.TAG_NAME, "td")[1].text for r in rows)
        assert driver.execute_script("return document.getElementById('timeline').naturalWidth") > 0
        progress = driver.find_element(By.ID, "progress")
        assert progress.get_attribute("value") == progress.get_attribute("max") == "12"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "serve_page_video.png"))
    finally:
        driver.quit()


@pytest.mark.slow
def test_load_videos_and_photos_together_lose_nothing(tmp_path):
    """4 clients each upload a clip and follow its job while 12 clients send photos: every photo request is
    answered (200, or 503 with Retry-After), every job ends done. The photo latency beside the no-video
    baseline is measured by experiments/bench_serve_video.py, not here."""
    clip = pan_clip(SAMPLE_PHOTO, tmp_path / "walk.avi", frames=12).read_bytes()
    photo = SAMPLE_PHOTO.read_bytes()
    with ServerProcess(["--max-video-jobs", "4"]) as server:
        statuses, jobs = [], []
        lock = threading.Lock()

        def photos(n: int) -> None:
            with httpx.Client(base_url=server.url, timeout=120) as c:
                for _ in range(n):
                    r = c.post("/predict", content=photo)
                    with lock:
                        statuses.append(r.status_code)
                    assert r.status_code == 200 or (r.status_code == 503 and r.headers.get("retry-after")), r.text

        def video(_: int) -> None:
            with httpx.Client(base_url=server.url, timeout=120) as c:
                r = c.post("/predict/video", content=clip)
                assert r.status_code == 202, r.text
                status = wait_for_job(c, r.json()["id"], timeout_s=600)
                with lock:
                    jobs.append((status["state"], len(status["results"]) if status["state"] == "done" else 0))

        with ThreadPoolExecutor(16) as pool:
            done = [pool.submit(video, i) for i in range(4)] + [pool.submit(photos, 10) for _ in range(12)]
            for f in done:
                f.result()
        health = httpx.get(server.url + "/health").json()
    assert len(statuses) == 120 and set(statuses) <= {200, 503} and statuses.count(200) >= 60
    assert jobs == [("done", 12)] * 4
    assert health["pending"] == 0 and health["video_jobs"]["active"] == 0
    assert not log_problems(server), server.log()
