"""Benchmark multi-face inference: model load, one photo end to end, and the classifier per face.

Times are medians over ``--repeats`` runs after ``--warmup`` runs, on CPU and (when present) on
the GPU. The photo is ``../shared/photos/group_of_six.jpg`` when present, else the shipped
``tests/assets/sample_faces.jpg``.

Usage::

    python experiments/bench_inference.py [--checkpoint CKPT ...] [--photo PATH] [--repeats 10]

Each ``--checkpoint`` (default: the bundled ``default`` and ``fast`` models) is a row, in one run.

Prints a Markdown table and writes it, with the raw numbers, to
``experiments/results/bench_inference.json`` (and ``.md``).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from emotion.checkpoint import BUNDLED_MODELS, load_model
from emotion.device import device_name
from emotion.errors import user_errors_exit
from emotion.inference import FaceEmotionPredictor, load_image
from emotion.io import write_results

ROOT = Path(__file__).resolve().parent.parent
SHARED_PHOTO = ROOT.parent / "shared" / "photos" / "group_of_six.jpg"
SHIPPED_PHOTO = ROOT / "tests" / "assets" / "sample_faces.jpg"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int) -> float:
    """Median wall time of ``fn`` in milliseconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def bench_device(device: str, ckpt: str, photo: Path, repeats: int, warmup: int) -> dict[str, float | int | str]:
    dev = torch.device(device)
    t = time.perf_counter()
    load_model(ckpt, device=dev)  # the first load also imports Lightning and the model code
    _sync(dev)
    first_load_ms = (time.perf_counter() - t) * 1000
    load_ms = median_ms(lambda: load_model(ckpt, device=dev), dev, max(3, repeats // 3), 1)
    p = FaceEmotionPredictor.from_checkpoint(ckpt, device=dev)
    rgb, _ = load_image(photo)
    result = p(photo)
    det = p.detector(rgb)
    faces = p.faces(rgb, det)
    if len(faces) == 0:
        raise SystemExit(f"error: no face found in {photo}; cannot time the classifier on it")
    batch64 = np.resize(faces, (64, *faces.shape[1:]))  # the photo's faces, repeated to 64
    batch256 = np.resize(faces, (256, *faces.shape[1:]))
    six = np.resize(faces, (6, *faces.shape[1:]))
    fp32 = FaceEmotionPredictor(p.model, bf16=False)
    # ONNX Runtime (CPU only): the same network, exported; the ONNX file is made once and cached.
    onnx = FaceEmotionPredictor.from_checkpoint(ckpt, runtime="onnx") if dev.type == "cpu" else None
    model = load_model(ckpt, device="cpu")
    return {
        "model": f"{Path(ckpt).name} ({model.hparams.arch})",
        "device": device_name("cpu" if dev.type == "cpu" else None),
        "faces_found": len(result.faces),
        "model_first_load_ms": first_load_ms,
        "model_load_ms": load_ms,
        "photo_end_to_end_ms": median_ms(lambda: p(photo), dev, repeats, warmup),
        "detect_ms": median_ms(lambda: p.detector(rgb), dev, repeats, warmup),
        "crop_preprocess_ms": median_ms(lambda: p.faces(rgb, det), dev, repeats, warmup),
        "classify_batch1_ms_per_face": median_ms(lambda: p.classify(faces[:1]), dev, repeats * 3, warmup),
        "classify_batch64_ms_per_face": median_ms(lambda: p.classify(batch64), dev, repeats, warmup) / 64,
        # The bar for the fast model (video and bulk work): ms per face at batch 256.
        "classify_batch256_ms_per_face": median_ms(lambda: p.classify(batch256), dev, repeats, warmup) / 256,
        # The speed bar for a bundled model: 6 faces in one batch, as the predictor runs them
        # (bf16 where the device has it natively), and the same in fp32.
        "classify_6_faces_ms": median_ms(lambda: p.classify(six), dev, repeats * 3, warmup),
        "classify_6_faces_fp32_ms": median_ms(lambda: fp32.classify(six), dev, repeats * 3, warmup),
        "classify_6_faces_onnx_ms": median_ms(lambda: onnx.classify(six), dev, repeats * 3, warmup) if onnx else None,
        "bf16": p.bf16,
    }


def markdown(rows: list[dict], photo: Path, size: tuple[int, int]) -> str:
    head = (f"Photo: `{photo.name}` ({size[0]}×{size[1]}), torch CPU threads: "
            f"{torch.get_num_threads()}; median ms.\n\n"
            "| model | device | faces | model load: first / again | photo end to end | detect | crop + preprocess "
            "| classifier ms/face, batch 1 | classifier ms/face, batch 64 | classifier ms/face, batch 256 "
            "| 6 faces ms (bf16) | 6 faces ms (fp32) | 6 faces ms (ONNX Runtime) |\n"
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    body = "".join(
        f"| {r['model']} | {r['device']} | {r['faces_found']} "
        f"| {r['model_first_load_ms']:.0f} / {r['model_load_ms']:.0f} "
        f"| {r['photo_end_to_end_ms']:.1f} "
        f"| {r['detect_ms']:.1f} | {r['crop_preprocess_ms']:.1f} | {r['classify_batch1_ms_per_face']:.2f} "
        f"| {r['classify_batch64_ms_per_face']:.3f} | {r['classify_batch256_ms_per_face']:.3f} "
        f"| {r['classify_6_faces_ms'] if r['bf16'] else float('nan'):.2f} | {r['classify_6_faces_fp32_ms']:.2f} "
        f"| {r['classify_6_faces_onnx_ms'] or float('nan'):.2f} |\n"
        for r in rows)
    return head + body


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", action="append", default=None,
                    help=".ckpt, exported folder or bundled name; repeat for more rows (default: default and fast)")
    ap.add_argument("--photo", default=None, help="default: ../shared/photos/group_of_six.jpg, else the shipped one")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--no-gpu", action="store_true")
    ap.add_argument("--note", default="", help="free text saved with the results (machine load, model origin)")
    ap.add_argument("--out", default=str(ROOT / "experiments" / "results" / "bench_inference.json"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    ckpts = args.checkpoint or [str(p) for p in BUNDLED_MODELS.values() if p.is_dir()]
    photo = Path(args.photo) if args.photo else (SHARED_PHOTO if SHARED_PHOTO.is_file() else SHIPPED_PHOTO)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() and not args.no_gpu else [])
    rows = [bench_device(d, ckpt, photo, args.repeats, args.warmup) for ckpt in ckpts for d in devices]
    rgb, _ = load_image(photo)
    table = markdown(rows, photo, rgb.size)
    print(table)
    write_results(args.out, {
        "photo": photo.name, "photo_size": list(rgb.size), "checkpoints": ckpts,
        "repeats": args.repeats, "warmup": args.warmup, "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(), "platform": platform.platform(), "rows": rows,
        "note": args.note, "markdown": table,
    }, table)


if __name__ == "__main__":
    user_errors_exit(main)
