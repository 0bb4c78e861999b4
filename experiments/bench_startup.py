"""Start-up: ``python -m emotion.predict one.jpg`` end to end beside ``python -c "import torch"`` (#33).

    python experiments/bench_startup.py [--photo tests/assets/sample_faces.jpg] [--repeats 7] [--before REF]

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

from emotion.device import machine_name  # noqa: E402
from emotion.io import write_results  # noqa: E402


def wall(cmd: list[str], tree: Path = ROOT) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)})
    return time.perf_counter() - start


def import_costs(cmd: list[str], top: int = 10) -> list[dict]:
    """Import time by distribution (the modules' own time, summed by their top-level package), from
    ``-X importtime``: what the run's imports cost, and who."""
    out = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stderr
    totals: dict[str, float] = {}
    for line in out.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, _, name = line.removeprefix("import time:").split("|")
        package = name.strip().split(".")[0]
        totals[package] = totals.get(package, 0.0) + int(own) / 1000
    return [{"module": k, "ms": v} for k, v in sorted(totals.items(), key=lambda kv: -kv[1])[:top]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photo", default=str(ROOT / "tests" / "assets" / "sample_faces.jpg"))
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--before", default=None, metavar="REF",
                    help="also time the predict run of this git commit (checked out in a temporary worktree)")
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
    trees = {name: ROOT for name in commands}
    if args.before:
        tree = Path(tempfile.mkdtemp(prefix="before-")) / "tree"
        subprocess.run(["git", "worktree", "add", "-f", "--detach", str(tree), args.before], check=True, cwd=ROOT,
                       capture_output=True)
        name = f"emotion.predict one.jpg (default model) at {args.before[:10]}"
        commands[name], trees[name] = commands["emotion.predict one.jpg (default model)"], tree
    try:
        for name, cmd in commands.items():
            wall(cmd, trees[name])  # warm-up
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeats):
            for name, cmd in commands.items():
                times[name].append(wall(cmd, trees[name]))
    finally:
        if args.before:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
    base = statistics.median(times["python -c 'import torch'"])
    rows = [{"command": name, "median_s": round(statistics.median(t), 3), "x_import_torch":
             round(statistics.median(t) / base, 2)} for name, t in times.items()]
    costs = import_costs(commands["emotion.predict one.jpg (default model)"])
    record = {"machine": machine_name(), "python": sys.version.split()[0], "repeats": args.repeats, "rows": rows,
              "imports": costs, "photo": Path(args.photo).name}
    md = [f"`python experiments/bench_startup.py --repeats {args.repeats}"
          f"{' --before ' + args.before if args.before else ''}`; {record['machine']}; "
          f"each command a fresh process, median of {args.repeats} alternating rounds after a warm-up; the photo: "
          f"{record['photo']} (6 faces), writing its annotated PNG and predictions.json.\n",
          "| command | median s | × `import torch` |", "|---|---:|---:|"]
    md += [f"| {r['command']} | {r['median_s']} | {r['x_import_torch']}× |" for r in rows]
    md += ["", "What the predict run's imports cost, by package (`python -X importtime`: each module's own time, "
           "summed by its top-level package; the rest of the run is reading the model, detecting, classifying "
           "and writing):", "", "| package | ms |", "|---|---:|"] + [f"| `{c['module']}` | {c['ms']:.0f} |"
                                                                       for c in costs]
    write_results(args.out, record, "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
