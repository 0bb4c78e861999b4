"""Our photo predictor beside the `fer` package, in one process: the same photos, then FER2013 PrivateTest.

    make bench-peers     # builds .venv-peers (fer 25.10.3 + TensorFlow), then runs this in it
    python experiments/bench_peers.py [--data FER2013_ROOT] [--photos DIR] [--repeats 9]

Photos: the pipelines take turns on each photo (one warm-up each, then ``--repeats`` rounds);
median ms from the path to the per-face probabilities, and the faces each found.

* `fer` runs as its README shows: ``FER(mtcnn=True).detect_emotions(path)``. It reads the photo with
  OpenCV and hands that BGR array to facenet's MTCNN, which was trained on RGB; that is what its
  users get, so that is what is timed.
* ours: ``FaceEmotionPredictor.from_checkpoint()(path)``: the bundled model, default settings
  (faces from 1/12 of the photo's shorter side, at most 56 px), and again with ``min_face=20``,
  MTCNN's whole pyramid as facenet and `fer` search it.

Start-up: one photo end to end in a fresh process, as a user's first run is: ``python -m emotion.predict
PHOTO``, and a fresh ``python -c`` of `fer`'s README lines on it (facenet_pytorch imported first, as
here), beside ``python -c "import torch"`` (the floor both stand on); taking turns, median of
``--startup-repeats`` rounds after a warm-up each.

PrivateTest: each package's shipped classifier on the 3,589 faces. `fer` gets the whole 48×48
image as the face box with ``offsets=(0, 0)`` (its default 10-px context would shrink the face
inside the crop); ours classifies the same uint8 faces through the predictor, as it does crops.

Writes experiments/results/bench_peers.json and .md; the README's peer table is that file.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import facenet_pytorch  # noqa: F401
import numpy as np

# torch and facenet-pytorch must be imported before TensorFlow: the other order makes building
# FER(mtcnn=True) segfault (measured with TF 2.21 and torch 2.13).
import torch  # noqa: I001

from emotion.data import FER2013DataModule
from emotion.data.classes import CLASS_NAMES
from emotion.data.sources.cache import default_cache_dir
from emotion.device import device_name
from emotion.inference import FaceEmotionPredictor, load_image
from emotion.io import write_results

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "experiments" / "results"


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t) * 1000, out


def bench_photos(fer, ours: FaceEmotionPredictor, whole: FaceEmotionPredictor, photos: list[Path],
                 repeats: int) -> list[dict]:
    rows = []
    for photo in photos:
        fer.detect_emotions(str(photo)), ours(photo), whole(photo)  # warm-up
        ms: dict[str, list[float]] = {"fer": [], "ours": [], "whole": []}
        for _ in range(repeats):  # taking turns, so that all see the same machine load
            t, fer_faces = timed(lambda p=photo: fer.detect_emotions(str(p)))
            ms["fer"].append(t)
            t, result = timed(lambda p=photo: ours(p))
            ms["ours"].append(t)
            t, whole_result = timed(lambda p=photo: whole(p))
            ms["whole"].append(t)
        size = load_image(photo)[0].size
        med = {k: round(statistics.median(v), 1) for k, v in ms.items()}
        row = {"photo": photo.name, "size": list(size), "fer_ms": med["fer"], "fer_faces": len(fer_faces),
               "ours_ms": med["ours"], "ours_faces": len(result.faces),
               "ours_min_face_20_ms": med["whole"], "ours_min_face_20_faces": len(whole_result.faces)}
        row["ours_over_fer"] = round(row["ours_ms"] / row["fer_ms"], 3)
        row["ours_min_face_20_over_fer"] = round(row["ours_min_face_20_ms"] / row["fer_ms"], 3)
        rows.append(row)
        print(row, flush=True)
    return rows


def bench_startup(photo: Path, repeats: int) -> list[dict]:
    """Fresh processes, taking turns: ``import torch``, our CLI on ``photo``, `fer`'s README lines on it."""
    import sys
    import tempfile

    sys.path.insert(0, str(ROOT))
    from experiments.bench_startup import wall

    py = sys.executable
    # facenet_pytorch first, as above (the README's order segfaults here); `from fer import FER` fails in 25.10.3.
    fer_lines = (f"import facenet_pytorch, sys; from fer.fer import FER; "
                 f"sys.exit(0 if FER(mtcnn=True).detect_emotions({str(photo)!r}) else 1)")
    with tempfile.TemporaryDirectory(prefix="peers-startup-") as out:
        commands = {"python -c 'import torch'": [py, "-c", "import torch"],
                    f"ours: python -m emotion.predict {photo.name}": [py, "-m", "emotion.predict", str(photo),
                                                                      "--out", out, "-q"],
                    f"`fer`: FER(mtcnn=True).detect_emotions({photo.name!r})": [py, "-c", fer_lines]}
        for cmd in commands.values():
            wall(cmd)  # warm-up: the OS file cache
        times: dict[str, list[float]] = {k: [] for k in commands}
        for _ in range(repeats):
            for k, cmd in commands.items():
                times[k].append(wall(cmd))
    base = statistics.median(times["python -c 'import torch'"])
    return [{"command": k, "median_s": round(statistics.median(v), 3),
             "x_import_torch": round(statistics.median(v) / base, 2)} for k, v in times.items()]


def bench_privatetest(fer_cls, ours: FaceEmotionPredictor, root: str) -> dict:
    import cv2

    test = FER2013DataModule(root, cache_dir=default_cache_dir(), num_workers=0).dataset("test")
    images, labels = test.images, test.labels.numpy()
    order = list(CLASS_NAMES)  # fer names the same seven classes
    fer_pred = np.empty(len(labels), dtype=np.int64)
    t = time.perf_counter()
    for i, img in enumerate(images):
        (face,) = fer_cls.detect_emotions(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR), face_rectangles=[(0, 0, 48, 48)])
        scores = face["emotions"]
        fer_pred[i] = int(np.argmax([scores[c] for c in order]))
    fer_ms = (time.perf_counter() - t) * 1000 / len(labels)
    t = time.perf_counter()
    probs = np.concatenate([ours.classify(images[i:i + 256]) for i in range(0, len(images), 256)])
    our_ms = (time.perf_counter() - t) * 1000 / len(labels)
    return {"n": int(len(labels)),
            "fer": {"privatetest_acc": round(float((fer_pred == labels).mean()), 4), "ms_per_face": round(fer_ms, 3)},
            "ours": {"privatetest_acc": round(float((probs.argmax(1) == labels).mean()), 4),
                     "ms_per_face": round(our_ms, 3), "tta": ours.tta}}


def markdown(doc: dict) -> str:
    lines = [f"`fer` {doc['fer_version']} (TensorFlow {doc['tensorflow']}) beside ours "
             f"({doc['ours_model']}, torch {doc['torch']}) on {doc['device']}, {doc['threads']} torch threads; "
             "median of "
             f"{doc['repeats']} alternating runs after a warm-up. `fer` is run as its README shows "
             "(`FER(mtcnn=True).detect_emotions(path)`, which feeds OpenCV's BGR array to an RGB-trained MTCNN).",
             "", "| photo | `fer` ms | `fer` faces | ours ms | our faces | ours / `fer` "
             "| ours, `min_face=20`: ms | faces | / `fer` |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['photo']} ({r['size'][0]}×{r['size'][1]}) | {r['fer_ms']} | {r['fer_faces']} | {r['ours_ms']} "
              f"| {r['ours_faces']} | {r['ours_over_fer']}× | {r['ours_min_face_20_ms']} "
              f"| {r['ours_min_face_20_faces']} | {r['ours_min_face_20_over_fer']}× |" for r in doc["photos"]]
    if doc.get("privatetest"):
        p = doc["privatetest"]
        lines += ["", f"FER2013 PrivateTest ({p['n']} faces), each package's shipped classifier:", "",
                  "| classifier | accuracy | ms/face |", "|---|---:|---:|",
                  f"| `fer` (quantized TFLite, whole 48-px image as the box, offsets 0) | "
                  f"{p['fer']['privatetest_acc']:.2%} | {p['fer']['ms_per_face']} |",
                  f"| ours ({doc['ours_model']}, tta={p['ours']['tta']}, batches of 256) | "
                  f"{p['ours']['privatetest_acc']:.2%} | {p['ours']['ms_per_face']} |"]
    if doc.get("startup"):
        lines += ["", f"Start-up: one photo end to end, each command a fresh process, median of "
                  f"{doc['startup_repeats']} alternating rounds after a warm-up:", "",
                  "| command | median s | × `import torch` |", "|---|---:|---:|"]
        lines += [f"| {r['command']} | {r['median_s']} | {r['x_import_torch']}× |" for r in doc["startup"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", default=str(ROOT.parent / "shared" / "photos"), help="folder of photos")
    ap.add_argument("--data", default=None, help="FER2013 root: also score both classifiers on PrivateTest")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--startup-repeats", type=int, default=5, help="rounds of the fresh-process runs (0: none)")
    ap.add_argument("--out", default=str(RESULTS / "bench_peers.json"))
    args = ap.parse_args()

    import fer
    import tensorflow as tf
    from fer.fer import FER  # `from fer import FER` fails in 25.10.3

    photos = sorted(p for p in Path(args.photos).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not photos:
        raise SystemExit(f"error: no photos in '{args.photos}'; pass --photos DIR")
    ours = FaceEmotionPredictor.from_checkpoint(device="cpu")
    doc = {"fer_version": fer.__version__, "tensorflow": tf.__version__, "torch": torch.__version__,
           "device": device_name("cpu"), "threads": torch.get_num_threads(), "repeats": args.repeats,
           "ours_model": ours.model.hparams.get("arch"),
           "photos": bench_photos(FER(mtcnn=True), ours,
                                  FaceEmotionPredictor.from_checkpoint(device="cpu", min_face=20), photos,
                                  args.repeats)}
    if args.startup_repeats:
        doc["startup_repeats"] = args.startup_repeats
        doc["startup"] = bench_startup(photos[0], args.startup_repeats)
    if args.data:
        doc["privatetest"] = bench_privatetest(FER(offsets=(0, 0)), ours, args.data)
        doc["fer"] = doc["privatetest"]["fer"]  # what experiments/accuracy_table.py reads
    doc["markdown"] = markdown(doc)
    print(doc["markdown"])
    write_results(args.out, doc, doc["markdown"])


if __name__ == "__main__":
    main()
