"""Start-up: ``python -m emotion.predict one.jpg`` end to end beside ``python -c "import torch"`` (#33).

    python experiments/bench_startup.py [--photo tests/assets/sample_faces.jpg] [--repeats 7]

Each command runs as a fresh process, the two (and the fast model's run) taking turns, after one warm-up
each (the OS file cache); the median wall time of ``--repeats`` rounds, and the ratio to ``import torch``.
Then what costs: ``python -X importtime`` of the predict run, the slowest imports by their own cumulative
time, and the time left for the work itself. Writes ``experiments/results/bench_startup.{json,md}``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emotion.io import write_results  # noqa: E402


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - start


def import_costs(cmd: list[str], top: int = 8) -> list[dict]:
    """The top-level-most imports that cost most (cumulative µs), from ``-X importtime``."""
    out = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stderr
    rows = []
    for line in out.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cum, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        depth = (len(name) - len(name.lstrip())) // 2
        rows.append({"module": name.strip(), "depth": depth, "ms": int(cum) / 1000})
    tops = [r for r in rows if r["depth"] == 0]
    return sorted(tops, key=lambda r: -r["ms"])[:top]


def machine() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    return f"{os.cpu_count()} cores"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photo", default=str(ROOT / "tests" / "assets" / "sample_faces.jpg"))
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", default=str(ROOT / "experiments" / "results" / "bench_startup.json"))
    args = ap.parse_args()
    out = tempfile.mkdtemp(prefix="startup-")
    py = sys.executable
    commands = {
        "python -c 'import torch'": [py, "-c", "import torch"],
        "emotion.predict one.jpg (default model)": [py, "-m", "emotion.predict", args.photo, "--out", out, "-q"],
        "emotion.predict one.jpg --checkpoint fast": [py, "-m", "emotion.predict", args.photo, "--out", out, "-q",
                                                      "--checkpoint", "fast"],
    }
    for cmd in commands.values():
        wall(cmd)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeats):
        for name, cmd in commands.items():
            times[name].append(wall(cmd))
    base = statistics.median(times["python -c 'import torch'"])
    rows = [{"command": name, "median_s": round(statistics.median(t), 3), "x_import_torch":
             round(statistics.median(t) / base, 2)} for name, t in times.items()]
    costs = import_costs(commands["emotion.predict one.jpg (default model)"])
    record = {"machine": machine(), "python": sys.version.split()[0], "repeats": args.repeats, "rows": rows,
              "imports": costs, "photo": Path(args.photo).name}
    md = [f"`python experiments/bench_startup.py --repeats {args.repeats}`; {record['machine']}; "
          f"each command a fresh process, median of {args.repeats} alternating rounds after a warm-up; the photo: "
          f"{record['photo']} (6 faces), writing its annotated PNG and predictions.json.\n",
          "| command | median s | × `import torch` |", "|---|---:|---:|"]
    md += [f"| {r['command']} | {r['median_s']} | {r['x_import_torch']}× |" for r in rows]
    md += ["", "The slowest top-level imports of the predict run (`python -X importtime`, cumulative ms):", "",
           "| module | ms |", "|---|---:|"] + [f"| `{c['module']}` | {c['ms']:.0f} |" for c in costs]
    write_results(args.out, record, "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
