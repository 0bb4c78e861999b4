"""Folders at the model's speed: the per-image path beside the bulk pipeline, and the classifier's
own batched time per face, in one run.

Crops: a FER2013 class folder (``--crops``, default PrivateTest+PublicTest happy, 1,774 faces) with
``faces_are_crops``. Photos: ``--photos`` copies of the shared group photo and of the sample photo
(detection, six faces each). Each path runs a :class:`~emotion.inference.drivers.session.PredictSession`
with no annotation, as ``emotion.predict --no-annotate -q`` does once started: ``per-image`` one
image at a time (the path before the bulk pipeline), ``bulk`` with ``--workers`` processes. The
results of the two are compared face for face. Writes ``experiments/results/bench_bulk.{json,md}``.

    python experiments/bench_bulk.py [--crops DIR] [--photos 24] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emotion.inference import FaceEmotionPredictor, load_image  # noqa: E402
from emotion.inference.drivers.inputs import collect_inputs  # noqa: E402
from emotion.inference.drivers.session import PredictSession  # noqa: E402
from emotion.io import write_results  # noqa: E402

SHARED = ROOT.parent / "shared"


def run(predictor, jobs, workers: int | None) -> tuple[float, list[dict]]:
    """Seconds and results of one session over ``jobs``: ``workers=None`` one image at a time."""
    session = PredictSession(predictor, tempfile.mkdtemp(), annotate=False, say=lambda *a: None)
    start = time.perf_counter()
    if workers is None:
        for job in jobs:
            session.run(job, quiet=True)
    else:
        session.run_all(jobs, quiet=True, workers=workers)
    return time.perf_counter() - start, session.results


def same(a: list[dict], b: list[dict]) -> tuple[bool, float]:
    """Whether two runs found the same faces with the same labels, and the largest probability gap."""
    ok, gap = len(a) == len(b), 0.0
    for ra, rb in zip(a, b):
        ok &= ra["path"] == rb["path"] and len(ra["faces"]) == len(rb["faces"])
        for fa, fb in zip(ra["faces"], rb["faces"]):
            ok &= fa["box"] == fb["box"] and fa["label"] == fb["label"]
            gap = max(gap, max(abs(fa["probabilities"][k] - fb["probabilities"][k]) for k in fa["probabilities"]))
    return bool(ok), gap


def model_ms_per_face(predictor, faces: np.ndarray, batch: int = 256) -> float:
    predictor.classify(faces[:batch])  # warm-up
    start = time.perf_counter()
    for i in range(0, len(faces), batch):
        predictor.classify(faces[i:i + batch])
    return (time.perf_counter() - start) / len(faces) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_crops = SHARED / "data" / "fer2013" / "test" / "happy"
    ap.add_argument("--crops", default=str(default_crops if default_crops.is_dir()
                                           else ROOT / "emotion" / "assets" / "fer2013_sample"))
    ap.add_argument("--photos", type=int, default=24, help="copies of each photo")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "experiments" / "results" / "bench_bulk.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []

    crops = FaceEmotionPredictor.from_checkpoint(device="cpu", faces_are_crops=True)
    jobs, _ = collect_inputs([args.crops])
    jobs = [j for j in jobs if j.kind == "image"]
    run(crops, jobs[:64], 2)  # warm-up: page cache, oneDNN kernels
    t_old, old = run(crops, jobs, None)
    t_new, new = run(crops, jobs, args.workers)
    faces = np.stack([crops.find_faces(load_image(j.path)[0])[1][0] for j in jobs[:1024]])
    model = model_ms_per_face(crops, faces)
    ok, gap = same(old, new)
    n = sum(len(r["faces"]) for r in new)
    rows.append({"workload": f"crops ({Path(args.crops).name}, faces_are_crops)", "images": len(jobs), "faces": n,
                 "per_image_ms_per_face": round(t_old / n * 1000, 3), "bulk_ms_per_face": round(t_new / n * 1000, 3),
                 "model_ms_per_face": round(model, 3), "bulk_over_model": round(t_new / n * 1000 / model, 2),
                 "speedup": round(t_old / t_new, 2), "same_faces_and_labels": ok, "max_prob_gap": gap})
    print(rows[-1], flush=True)

    photos = [p for p in (SHARED / "photos" / "group_of_six.jpg", ROOT / "tests" / "assets" / "sample_faces.jpg")
              if p.is_file()]
    folder = Path(tempfile.mkdtemp())
    for p in photos:
        for k in range(args.photos):
            shutil.copy(p, folder / f"{p.stem}_{k:03d}{p.suffix}")
    full = FaceEmotionPredictor.from_checkpoint(device="cpu")
    jobs, _ = collect_inputs([str(folder)])
    run(full, jobs[:4], 2)
    t_old, old = run(full, jobs, None)
    t_new, new = run(full, jobs, args.workers)
    ok, gap = same(old, new)
    n = sum(len(r["faces"]) for r in new)
    rows.append({"workload": f"photos ({', '.join(p.name for p in photos)}, {args.photos} copies each)",
                 "images": len(jobs), "faces": n, "per_image_ms_per_face": round(t_old / n * 1000, 3),
                 "bulk_ms_per_face": round(t_new / n * 1000, 3), "model_ms_per_face": round(model, 3),
                 "bulk_over_model": round(t_new / n * 1000 / model, 2), "speedup": round(t_old / t_new, 2),
                 "same_faces_and_labels": ok, "max_prob_gap": gap})
    print(rows[-1], flush=True)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    machine = f"{cpu}, {os.cpu_count()} cores, {args.threads} torch threads, {args.workers} workers"
    md = [f"# Bulk inference\n\n`python experiments/bench_bulk.py --photos {args.photos} --workers {args.workers}`; "
          f"{machine}; bundled model, bf16 where native; no annotation; start-up excluded.\n",
          "| workload | images | faces | per-image ms/face | bulk ms/face | model ms/face (batch 256) | bulk / model |"
          " bulk speed-up | same faces and labels | max prob gap |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        md.append(f"| {r['workload']} | {r['images']} | {r['faces']} | {r['per_image_ms_per_face']} | "
                  f"{r['bulk_ms_per_face']} | {r['model_ms_per_face']} | {r['bulk_over_model']}× | {r['speedup']}× | "
                  f"{'yes' if r['same_faces_and_labels'] else 'NO'} | {r['max_prob_gap']:.1e} |")
    write_results(args.out, {"machine": machine, "rows": rows}, "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
