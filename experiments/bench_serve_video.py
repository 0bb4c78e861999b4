"""Photo latency while videos run through the service (#34), beside the same photo load alone, in one run.

One server (``--max-video-jobs 4``). First the baseline: 12 clients send ``--requests`` photos in all. Then
the same 12 photo clients while 4 more clients each upload a clip (the photo panning, 640 px, ``--frames``
frames) and follow its job to the end. Every request is counted: answered (200), refused (503 + Retry-After)
or lost (anything else, or no answer). Writes ``experiments/results/bench_serve_video.{json,md}``.

    python experiments/bench_serve_video.py [--requests 240] [--frames 30]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))

from bench_serve import FALLBACK_PHOTO, PHOTO, drive  # noqa: E402

from emotion.device import machine_name  # noqa: E402
from emotion.io import write_results  # noqa: E402
from emotion.service.process import ServerProcess  # noqa: E402
from tests.helpers import pan_clip  # noqa: E402


def run_job(url: str, clip: bytes) -> dict:
    start = time.perf_counter()
    with httpx.Client(base_url=url, timeout=600) as c:
        r = c.post("/predict/video", content=clip)
        if r.status_code != 202:
            return {"state": f"HTTP {r.status_code}", "seconds": time.perf_counter() - start}
        job = r.json()["id"]
        while True:
            status = c.get(f"/jobs/{job}").json()
            if status["state"] in ("done", "error"):
                return {"state": status["state"], "frames": status["frames_done"],
                        "seconds": round(time.perf_counter() - start, 1)}
            time.sleep(0.25)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=240)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--out", default=str(ROOT / "experiments" / "results" / "bench_serve_video.json"))
    args = ap.parse_args()
    photo = PHOTO if PHOTO.is_file() else FALLBACK_PHOTO
    body = photo.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        from PIL import Image

        small = Path(tmp) / "photo640.jpg"
        im = Image.open(photo).convert("RGB")
        im.resize((640, round(640 * im.height / im.width))).save(small, quality=92)
        clip = pan_clip(small, Path(tmp) / "clip.avi", frames=args.frames, fps=10.0, step=3).read_bytes()
    with ServerProcess(["--max-pending", "256", "--max-video-jobs", "4"]) as server:
        url = server.url + "/predict"
        drive(url, body, 4, 8)  # warm-up
        baseline = drive(url, body, 12, args.requests)
        print("baseline", baseline, flush=True)
        jobs: list[dict] = []
        lock = threading.Lock()

        def video(_: int) -> None:
            result = run_job(server.url, clip)
            with lock:
                jobs.append(result)

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(video, i) for i in range(4)]
            time.sleep(0.5)  # the jobs are queued and running before the photos start
            loaded = drive(url, body, 12, args.requests)
            for f in futures:
                f.result()
        print("with videos", loaded, jobs, flush=True)
        health = httpx.get(server.url + "/health").json()
    lost = lambda r: r["requests"] - r["ok"] - r["other"]  # noqa: E731
    record = {"machine": machine_name(), "photo": photo.name, "requests": args.requests, "clip_frames": args.frames,
              "baseline": baseline, "with_videos": loaded, "jobs": jobs, "video_jobs": health["video_jobs"],
              "lost": {"baseline": lost(baseline), "with_videos": lost(loaded)},
              "p99_ratio": round(loaded["p99_ms"] / baseline["p99_ms"], 2)}
    md = [f"# Photos while videos run through the service\n\n`python experiments/bench_serve_video.py "
          f"--requests {args.requests} --frames {args.frames}`; {record['machine']}; bundled model; server and "
          f"clients on 127.0.0.1. 12 clients send {args.requests} photos ({photo.name}); with videos, 4 more "
          f"clients each upload a {args.frames}-frame 640-px clip and follow its job.\n",
          "| load | photos answered | refused (503) | lost | p50 ms | p90 ms | p99 ms | photos/s |",
          "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in (("photos alone", baseline), ("photos + 4 video jobs", loaded)):
        md.append(f"| {name} | {r['ok']} | {r['other']} | {lost(r)} | {r['p50_ms']} | {r['p90_ms']} | "
                  f"{r['p99_ms']} | {r['req_per_s']} |")
    md.append(f"\nPhoto p99 with videos: {record['p99_ratio']}× the baseline. Jobs: "
              + "; ".join(f"{j['state']} ({j.get('frames', 0)} frames, {j['seconds']} s)" for j in jobs) + ".")
    write_results(args.out, record, "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
