"""Training speed of each registered model, fp32 beside bf16 autocast + channels_last, in one run.

    python experiments/bench_train.py [--device cpu] [--models vgg resnet18] [--size 40] [--compile]

Times real optimisation steps (forward, backward, SGD) of the EmotionClassifier after warm-up
steps. The modes alternate per model, so both see the same machine load. Also times the input
pipeline (the FER2013 loader with the training augmentation) against the step, when
``--data`` names a FER2013 root. Prints a Markdown table and writes
experiments/results/bench_train_<device>.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch

from emotion.device import choose_precision, device_name
from emotion.io import write_json
from emotion.models import list_models
from emotion.models.layout import cpu_training_memory_format
from emotion.training.module import EmotionClassifier

HERE = Path(__file__).resolve().parent
EPOCH = 28_709
#: name → (autocast dtype or None, channels_last); "chosen" is what the trainer picks on this device
#: (precision by emotion.config, memory format by emotion.models.layout), the cost of the crash rule.
MODES = {"fp32": (None, False), "bf16": (torch.bfloat16, False), "bf16+cl": (torch.bfloat16, True), "chosen": None}


def time_steps(arch: str, device: str, mode: str, batch: int, size: int, steps: int, warmup: int,
               compile_model: bool = False) -> float:
    """Seconds per training step of ``arch`` in ``mode`` (see :data:`MODES`)."""
    if mode == "chosen":
        precision = choose_precision(device)[0]
        dtype = torch.bfloat16 if precision.startswith("bf16") else None
        model = EmotionClassifier(arch=arch, input_size=size).to(device).train()
        if device == "cpu":
            model.model.to(memory_format=cpu_training_memory_format(model.model, precision)[0])
    else:
        dtype, channels_last = MODES[mode]
        model = EmotionClassifier(arch=arch, input_size=size, channels_last=channels_last).to(device).train()
    net = torch.compile(model.model) if compile_model else model.model
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    x = torch.randn(batch, 1, size, size, device=device)
    y = torch.randint(0, 7, (batch,), device=device)
    autocast = torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None)
    for i in range(warmup + steps):
        if i == warmup:
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        with autocast:
            loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def loader_rate(root: str, augment: str, batch: int, size: int, workers: int, batches: int) -> float:
    """Images per second the training DataLoader delivers (augmentation in ``workers`` processes)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from emotion.config import CONFIG_DIR
    from emotion.data import FER2013DataModule
    from emotion.data.sources.cache import default_cache_dir

    aug = instantiate(OmegaConf.load(CONFIG_DIR / "data" / "augment" / f"{augment}.yaml"))
    dm = FER2013DataModule(root, cache_dir=default_cache_dir(),
                           batch_size=batch, num_workers=workers, image_size=size, augment=aug)
    dm.setup()
    it = iter(dm.train_dataloader())
    next(it)  # workers started
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--models", nargs="*", default=list_models())
    ap.add_argument("--modes", nargs="*", default=list(MODES), choices=list(MODES))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=48, help="input side (48: FER2013; 40: the CPU recipe's)")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile'd bf16+cl")
    ap.add_argument("--data", help="FER2013 root: also time the training loader")
    ap.add_argument("--augment", default="ssr", help="augmentation config for the loader timing")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, help="JSON to write (default: results/bench_train_<device>.json)")
    args = ap.parse_args()
    modes = list(args.modes) + (["bf16+cl+compile"] if args.compile else [])
    rows = []
    for arch in args.models:
        row = {"model": arch, "params_m": round(sum(p.numel() for p in EmotionClassifier(arch=arch).model.parameters())
                                                / 1e6, 3)}
        for mode in modes:
            step = time_steps(arch, args.device, mode.removesuffix("+compile"), args.batch, args.size, args.steps,
                              args.warmup, compile_model=mode.endswith("+compile"))
            row[mode] = round(args.batch / step, 1)
        # Against fp32 when it was timed, else against the first mode timed.
        row["speedup"] = round(max(row[m] for m in modes) / row[modes[0]], 2)
        rows.append(row)
        print(row, flush=True)
    loader = None
    if args.data:
        loader = round(loader_rate(args.data, args.augment, args.batch, args.size, args.workers, 60), 1)
    machine = device_name(args.device) if args.device != "cpu" else \
        f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"
    auto, why = choose_precision(args.device)
    out = args.out or HERE / "results" / f"bench_train_{args.device}.json"
    write_json(out, {"device": machine, "batch": args.batch, "size": args.size, "steps": args.steps,
                     "auto_precision": auto, "why": why, "loader_img_per_s": loader,
                     "loader": {"augment": args.augment, "workers": args.workers} if loader else None, "rows": rows})
    print(f"\nTraining img/s, batch {args.batch}, {args.size}×{args.size} input ({machine}):\n")
    print("| model | params (M) | " + " | ".join(modes) + " | speed-up |")
    print("|---|---:|" + "---:|" * len(modes) + "---:|")  # speed-up: best mode / first mode
    for r in rows:
        print(f"| {r['model']} | {r['params_m']} | " + " | ".join(str(r[m]) for m in modes) + f" | {r['speedup']}× |")
    print(f"\nauto precision here: {auto} ({why}).")
    if loader:
        print(f"training loader ({args.augment}, {args.workers} workers): {loader} img/s")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
