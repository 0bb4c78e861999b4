"""Time decoding FER2013 into the uint8 cache, and loading the cache afterwards.

    python experiments/bench_data.py [--root ../shared/data/fer2013]

Prints a Markdown table and writes experiments/results/bench_data.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from emotion.data.sources.cache import load_or_build
from emotion.data.sources.fer2013 import locate_source
from emotion.io import write_json

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=os.environ.get("FER2013_DIR", "../shared/data/fer2013"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(HERE / "results" / "bench_data.json"))
    args = ap.parse_args()
    source = locate_source(args.root)
    with tempfile.TemporaryDirectory() as cache:
        t = time.perf_counter()
        raw = load_or_build(source, cache)
        decode = time.perf_counter() - t
        loads = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            load_or_build(source, cache)
            loads.append(time.perf_counter() - t)
        size = sum(f.stat().st_size for f in Path(cache).iterdir())
    result = {
        "source": str(source), "faces": int(len(raw.labels)), "decode_and_cache_s": round(decode, 2),
        "cache_load_s_median": round(statistics.median(loads), 3), "cache_mb": round(size / 2**20, 1),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
    }
    write_json(args.out, result)
    print("| faces | first run: decode + write cache | later runs: load cache | cache size |")
    print("|---|---|---|---|")
    print(f"| {result['faces']} | {result['decode_and_cache_s']} s | {result['cache_load_s_median']} s "
          f"| {result['cache_mb']} MB |")
    print(f"({result['machine']}; written to {args.out})")


if __name__ == "__main__":
    main()
