"""Latency and throughput of ``python -m emotion.serve`` at 1, 4 and 16 concurrent clients, with the
faces of concurrent requests batched and without (``--no-batching``), in one run.

Two workloads: a photo (``group_of_six.jpg``, detection and six faces) and a single 48×48 face
sent with ``faces_are_crops=true`` (classifier-bound: where batching shows). Each setting gets its
own server on 127.0.0.1, warm-up requests, then ``--requests`` timed ones. Writes
``experiments/results/bench_serve.{json,md}``.

    python experiments/bench_serve.py [--requests 96] [--clients 1 4 16]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emotion.device import machine_name  # noqa: E402
from emotion.io import write_results  # noqa: E402
from emotion.service.process import ServerProcess  # noqa: E402

PHOTO = ROOT.parent / "shared" / "photos" / "group_of_six.jpg"
FALLBACK_PHOTO = ROOT / "tests" / "assets" / "sample_faces.jpg"
FACE = next((ROOT / "emotion" / "assets" / "fer2013_sample" / "test" / "happy").glob("*.jpg"))


def drive(url: str, body: bytes, clients: int, requests: int) -> dict:
    """``requests`` POSTs spread over ``clients`` threads; latency of each, and the wall time."""
    latencies, statuses = [], []
    lock = threading.Lock()

    def client(n: int) -> None:
        with httpx.Client(timeout=120) as c:
            for _ in range(n):
                t = time.perf_counter()
                r = c.post(url, content=body)
                with lock:
                    statuses.append(r.status_code)
                    if r.status_code == 200:
                        latencies.append(time.perf_counter() - t)

    shares = [requests // clients + (i < requests % clients) for i in range(clients)]
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, shares))
    wall = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0] * 1] * 99
    return {"clients": clients, "requests": requests, "ok": statuses.count(200),
            "other": len(statuses) - statuses.count(200), "p50_ms": round(q[49] * 1000, 1),
            "p90_ms": round(q[89] * 1000, 1), "p99_ms": round(q[98] * 1000, 1),
            "req_per_s": round(len(latencies) / wall, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=96)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--out", default=str(ROOT / "experiments" / "results" / "bench_serve.json"))
    args = ap.parse_args()
    photo = PHOTO if PHOTO.is_file() else FALLBACK_PHOTO
    workloads = {f"photo ({photo.name})": ("", photo.read_bytes()),
                 "one 48×48 face (faces_are_crops)": ("?faces_are_crops=true", FACE.read_bytes())}
    rows = []
    for batching in (True, False):
        # --max-pending above the clients: this measures latency and throughput, not refusals.
        with ServerProcess(["--max-pending", "256"] + ([] if batching else ["--no-batching"])) as server:
            for workload, (query, body) in workloads.items():
                url = server.url + "/predict" + query
                drive(url, body, 4, 8)  # warm-up
                for clients in args.clients:
                    row = {"workload": workload, "batching": batching, **drive(url, body, clients, args.requests)}
                    rows.append(row)
                    print(row, flush=True)
            health = httpx.get(server.url + "/health").json()
            print("batching stats:", health["batching"], flush=True)
    machine = machine_name()
    md = [f"# Service latency and throughput\n\n`python experiments/bench_serve.py --requests {args.requests}`; "
          f"{machine}; bundled model, server and clients on the same machine (127.0.0.1), "
          f"{args.requests} timed requests per row.\n",
          "| workload | batching | clients | p50 ms | p90 ms | p99 ms | requests/s | batched / unbatched |",
          "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        base = next(b for b in rows if b["workload"] == r["workload"] and b["clients"] == r["clients"]
                    and not b["batching"])
        md.append(f"| {r['workload']} | {'on' if r['batching'] else 'off'} | {r['clients']} | {r['p50_ms']} | "
                  f"{r['p90_ms']} | {r['p99_ms']} | {r['req_per_s']} | "
                  f"{r['req_per_s'] / base['req_per_s']:.2f}× |")
    write_results(args.out, {"machine": machine, "requests": args.requests, "rows": rows}, "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
