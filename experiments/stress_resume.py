"""Run the fault-injection tests again and again beside a CPU hog, and count passes per case.

    python experiments/stress_resume.py [--loops 20] [--hogs 2] [-k EXPR] [--resume]

Each loop runs ``pytest tests/test_resume.py`` (every kill case checks that no process of the killed
run outlives it) while ``--hogs`` busy processes compete for the cores, as on a loaded CI machine.
Writes experiments/results/stress_resume.json: per test case, how many loops it passed. A session
can end before 20 loops (about 2 min each): ``--resume`` goes on from the loops that file holds, and
the file lists each sitting with its commit.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from emotion.io import write_json
from emotion.runinfo import git_commit

ROOT = Path(__file__).resolve().parent.parent


def one_loop(k: str | None) -> tuple[dict[str, str], float]:
    """Outcome (passed/failed/error/skipped) per test case of one pytest run, and its seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
                        "tests/test_resume.py", *(["-k", k] if k else [])], cwd=ROOT, capture_output=True)
        seconds = time.perf_counter() - start
        outcomes = {}
        for case in ET.parse(report).getroot().iter("testcase"):
            kinds = {child.tag for child in case}
            outcomes[case.get("name")] = ("failed" if "failure" in kinds else "error" if "error" in kinds
                                          else "skipped" if "skipped" in kinds else "passed")
        return outcomes, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loops", type=int, default=20)
    ap.add_argument("--hogs", type=int, default=2, help="busy processes beside the tests")
    ap.add_argument("-k", default=None, help="pytest -k expression (default: every test of test_resume.py)")
    ap.add_argument("--out", default=str(ROOT / "experiments" / "results" / "stress_resume.json"))
    ap.add_argument("--resume", action="store_true", help="go on from the loops --out already holds")
    args = ap.parse_args()
    passed, runs, seconds, sittings = Counter(), Counter(), [], []
    if args.resume and Path(args.out).is_file():
        done = json.loads(Path(args.out).read_text())
        if (done["hogs"], done["k"]) != (args.hogs, args.k):
            sys.exit(f"{args.out} was run with --hogs {done['hogs']} -k {done['k']}; resume with the same.")
        seconds = done["seconds_per_loop"]
        sittings = done.get("sittings") or [{"commit": None, "loops": done["loops_done"]}]
        for name, c in done["cases"].items():
            passed[name], runs[name] = c["passed"], c["runs"]
    start = len(seconds)
    sittings.append({"commit": git_commit(), "started": time.strftime("%Y-%m-%d %H:%M"), "loops": 0})
    # A SIGTERM (a session's end, `kill`) must also stop the hogs: make it unwind through `finally`.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hogs)]
    try:
        for i in range(start, args.loops):
            outcomes, s = one_loop(args.k)
            seconds.append(round(s, 1))
            for name, outcome in outcomes.items():
                runs[name] += 1
                passed[name] += outcome == "passed"
            bad = {n: o for n, o in outcomes.items() if o != "passed"}
            print(f"loop {i + 1}/{args.loops}: {len(outcomes) - len(bad)}/{len(outcomes)} passed in {s:.0f} s"
                  + (f"; not passed: {bad}" if bad else ""), flush=True)
            sittings[-1]["loops"] += 1
            write_json(args.out, {"loops_done": i + 1, "loops": args.loops, "hogs": args.hogs, "k": args.k,
                                  "seconds_per_loop": seconds, "sittings": sittings,
                                  "cases": {n: {"passed": passed[n], "runs": runs[n]} for n in sorted(runs)}})
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    print(json.dumps({n: f"{passed[n]}/{runs[n]}" for n in sorted(runs)}, indent=2))


if __name__ == "__main__":
    main()
