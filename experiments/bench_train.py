"""Seconds per FER2013 training epoch for each registered model, measured on this machine.

    python experiments/bench_train.py [--device cpu] [--steps 20] [--models mini_xception vgg]

Times real optimisation steps (forward, backward, SGD) of the EmotionClassifier at batch 64 on
48×48 inputs after warm-up steps, and extrapolates to the 28,709 training faces of an epoch.
Prints a Markdown table and writes experiments/results/bench_train_<device>.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch

from emotion.io import write_json
from emotion.models import list_models
from emotion.module import EmotionClassifier
from emotion.runinfo import device_name

HERE = Path(__file__).resolve().parent
EPOCH = 28_709


def time_steps(arch: str, device: str, batch: int, steps: int, warmup: int) -> float:
    model = EmotionClassifier(arch=arch).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    x = torch.randn(batch, 1, 48, 48, device=device)
    y = torch.randint(0, 7, (batch,), device=device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda")
    for i in range(warmup + steps):
        if i == warmup:
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        with autocast:
            loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--models", nargs="*", default=list_models())
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    rows = []
    for arch in args.models:
        step = time_steps(arch, args.device, args.batch, args.steps, args.warmup)
        params = sum(p.numel() for p in EmotionClassifier(arch=arch).model.parameters())
        rows.append({"model": arch, "params_m": round(params / 1e6, 3), "img_per_s": round(args.batch / step, 1),
                     "s_per_epoch": round(EPOCH / args.batch * step, 1)})
        print(rows[-1], flush=True)
    machine = device_name(args.device) if args.device != "cpu" else \
        f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"
    out = HERE / "results" / f"bench_train_{args.device}.json"
    write_json(out, {"device": machine, "batch": args.batch, "steps": args.steps, "rows": rows})
    print("\n| model | params (M) | img/s | s per epoch (28,709 faces) |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['params_m']} | {r['img_per_s']} | {r['s_per_epoch']} |")
    print(f"({machine}; training step only, data loading excluded; written to {out})")


if __name__ == "__main__":
    main()
