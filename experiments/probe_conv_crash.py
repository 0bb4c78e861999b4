"""Which layer shapes crash oneDNN's backward pass on this CPU (#26), one layer per process.

Each case is a convolution + BatchNorm, three SGD steps at a batch size, in NHWC or NCHW, fp32 or
bf16 autocast; a crash fails only its own process. The rule in ``emotion/models/layout.py`` comes from
this table. Writes ``experiments/results/probe_conv_crash.{json,md}``.

    python experiments/probe_conv_crash.py [--out experiments/results/probe_conv_crash.json]
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emotion.io import write_results  # noqa: E402

CASE = """
import sys, torch
from torch import nn
torch.set_num_threads(2)
torch.manual_seed(0)
cin, cout, k, stride, depthwise, hw, batch = map(int, sys.argv[1:8])
fmt, precision = sys.argv[8], sys.argv[9]
layer = nn.Sequential(nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=cin if depthwise else 1,
                                bias=False), nn.BatchNorm2d(cout))
x = torch.randn(batch, cin, hw, hw)
if fmt == "nhwc":
    layer, x = layer.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
opt = torch.optim.SGD(layer.parameters(), lr=0.01)
for _ in range(3):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        loss = layer(x).float().square().mean()
    opt.zero_grad(); loss.backward(); opt.step()
"""

# (in, out, kernel, stride, depthwise, side): every conv shape of our nets at 48 px, then 1×1
# stride-2 convolutions over a range of input channels.
SHAPES = [(1, 8, 3, 1, 0, 48), (8, 8, 3, 1, 0, 48), (8, 8, 3, 1, 1, 48), (8, 16, 1, 1, 0, 48),
          (16, 32, 1, 2, 0, 24), (64, 128, 1, 2, 0, 6), (8, 16, 3, 2, 0, 48)]
SHAPES += [(c, 16, 1, 2, 0, 48) for c in (1, 2, 4, 8, 12, 15, 16, 17, 24)]
SHAPES += [(8, 16, 1, 2, 0, 24)]

def run_case(shape, batch: int, fmt: str, precision: str) -> int:
    args = [str(v) for v in (*shape, batch)] + [fmt, precision]
    return subprocess.run([sys.executable, "-c", CASE, *args], capture_output=True, timeout=120).returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[3, 37])
    parser.add_argument("--out", default=str(ROOT / "experiments/results/probe_conv_crash.json"))
    args = parser.parse_args()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    rows = []
    for shape in SHAPES:
        for fmt in ("nhwc", "nchw"):
            for precision in ("bf16", "fp32"):
                codes = {b: run_case(shape, b, fmt, precision) for b in args.batches}
                rows.append({"in": shape[0], "out": shape[1], "kernel": shape[2], "stride": shape[3],
                             "depthwise": bool(shape[4]), "side": shape[5], "format": fmt,
                             "precision": precision, "exit_codes": codes,
                             "crashed": any(c != 0 for c in codes.values())})
                print(rows[-1], flush=True)
    crashed = [r for r in rows if r["crashed"]]
    md = [f"# oneDNN backward crash probe\n\n`python experiments/probe_conv_crash.py`; {cpu}, torch "
          f"{__import__('torch').__version__}, 2 threads, batch sizes {args.batches}, 3 SGD steps per case, "
          "one process per case. Non-zero exit codes (negative: killed by that signal).\n",
          "| conv (in→out, k, stride) | side | format | precision | exit codes |", "|---|---:|---|---|---|"]
    for r in rows:
        kind = "dw " if r["depthwise"] else ""
        md.append(f"| {kind}{r['in']}→{r['out']}, {r['kernel']}×{r['kernel']}, s{r['stride']} | {r['side']} | "
                  f"{r['format']} | {r['precision']} | {', '.join(str(c) for c in r['exit_codes'].values())} |")
    md.append(f"\n{len(crashed)} of {len(rows)} cases crashed, all of them "
              + ("1×1 stride-2 NHWC convolutions with 2-15 input channels." if all(
                  r["kernel"] == 1 and r["stride"] == 2 and r["format"] == "nhwc" and r["in"] < 16
                  for r in crashed) else "listed above."))
    write_results(args.out, {"cpu": cpu, "batches": args.batches, "rows": rows}, "\n".join(md) + "\n")
    print("\n".join(md[-1:]))


if __name__ == "__main__":
    main()
