"""Measure which crop margin around an MTCNN box makes faces look most like FER2013's.

FER2013 faces were cropped by an unknown registration step. To find the matching framing, we
take PublicTest (val) faces, upscale each and pad it with replicated edges (so that crops wider
than the original frame are possible, as in a real photo), run the predictor's own detector, crop
with a grid of margins (with and without eye alignment) through the predictor's own crop and
preprocessing, classify, and record the accuracy per margin. The best margin (see
:func:`select_margin`) becomes ``emotion.inference.detection.crop.DEFAULT_MARGIN``.

Usage::

    python experiments/measure_margin.py --root ../shared/data/fer2013 [--checkpoint CKPT] [--n 1000]

Writes ``experiments/results/margin.json``. Caveat: beyond the original frame the context is
replicated edge pixels, not real hair/background, so large margins are judged a little harshly.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from emotion.checkpoint import DEFAULT_MODEL
from emotion.data.classes import CLASS_NAMES
from emotion.data.preprocess import to_fer_face
from emotion.errors import user_errors_exit
from emotion.inference import FaceEmotionPredictor, crop_face
from emotion.io import write_json

ROOT = Path(__file__).resolve().parent.parent

# Per side, as a fraction of the box's longer side. Negative values too: MTCNN's box is taller
# than a FER2013 frame (its height is ~1.05 frames), so the best crop may lie inside it.
# Finer steps near the box itself, where the optimum lies.
MARGINS = [round(0.025 * i, 3) for i in range(-8, 9)] + [round(0.05 * i, 2) for i in range(5, 13)]  # -0.2 … 0.6


def list_val_images(root: Path, n: int, seed: int) -> list[tuple[Path, int]]:
    """A seeded random subset of the PublicTest images (natural class mix)."""
    files = sorted(root.glob("*/*/PublicTest_*.jpg"))
    items = [(f, CLASS_NAMES.index(f.parent.name)) for f in files if f.parent.name in CLASS_NAMES]
    if not items:
        sys.exit(f"error: no PublicTest_*.jpg under {root}/<split>/<class>/")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(items), size=min(n, len(items)), replace=False)
    return [items[i] for i in sorted(pick)]


def select_margin(acc: dict[tuple[float, bool], float]) -> tuple[float, bool]:
    """The margin whose neighbourhood scores best (averaged over align on/off), and the better
    align setting there (aligned on a tie).

    A single grid cell's accuracy on ~900 faces has a standard error of ~1.6 points, more than
    the differences between neighbouring cells, so the plain argmax would pick noise.
    """
    both = [(acc[(m, False)] + acc[(m, True)]) / 2 for m in MARGINS]
    smooth = [float(np.mean(both[max(i - 1, 0):i + 2])) for i in range(len(MARGINS))]
    m = MARGINS[int(np.argmax(smooth))]
    return m, acc[(m, True)] >= acc[(m, False)]


def upscale(face48: np.ndarray, face_px: int, canvas: int) -> Image.Image:
    """The 48×48 face at ``face_px`` (bicubic), edge-padded to ``canvas``, as RGB."""
    big = np.asarray(Image.fromarray(face48).resize((face_px, face_px), Image.Resampling.BICUBIC))
    pad = (canvas - face_px) // 2
    return Image.fromarray(np.pad(big, pad, mode="edge")).convert("RGB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=str(ROOT.parent / "shared" / "data" / "fer2013"))
    ap.add_argument("--checkpoint", default=None, help=".ckpt or exported folder (default: bundled model)")
    ap.add_argument("--n", type=int, default=1000, help="number of PublicTest images")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--face-px", type=int, default=144, help="upscaled side of the 48-px frame")
    ap.add_argument("--canvas", type=int, default=192, help="side after edge padding")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--note", default="", help="free text saved with the results (e.g. where the model came from)")
    ap.add_argument("--out", default=str(ROOT / "experiments" / "results" / "margin.json"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    start = time.perf_counter()
    ckpt = args.checkpoint or str(DEFAULT_MODEL)
    p = FaceEmotionPredictor.from_checkpoint(ckpt, device="cpu")
    items = list_val_images(Path(args.root), args.n, args.seed)
    labels = np.array([y for _, y in items])
    faces48 = np.stack([to_fer_face(Image.open(f)) for f, _ in items])

    direct = p.classify(faces48).argmax(1) == labels  # the model on the original 48×48 frames
    crops: dict[tuple[float, bool], list[np.ndarray]] = {(m, a): [] for m in MARGINS for a in (False, True)}
    detected, boxes_rel, scores, n_faces = [], [], [], []
    for i, face in enumerate(faces48):
        img = upscale(face, args.face_px, args.canvas)
        det = p.detector(img)
        n_faces.append(len(det))
        if len(det) == 0:
            continue
        k = int(det.scores.argmax())  # one face per FER image; keep the surest
        box, pts = det.boxes[k], det.landmarks[k]
        detected.append(i)
        scores.append(float(det.scores[k]))
        off = (args.canvas - args.face_px) / 2
        # Box in units of the original FER frame: where MTCNN puts a FER face.
        boxes_rel.append([(box[0] - off) / args.face_px, (box[1] - off) / args.face_px,
                          (box[2] - off) / args.face_px, (box[3] - off) / args.face_px])
        for (m, a), bucket in crops.items():
            bucket.append(to_fer_face(crop_face(img, box, pts, margin=m, align=a)))
        if (i + 1) % 100 == 0:
            print(f"{i + 1}/{len(items)} images, {len(detected)} detected", flush=True)

    det_idx = np.array(detected, dtype=int)
    y = labels[det_idx]
    acc = {key: float((p.classify(np.stack(v)).argmax(1) == y).mean()) for key, v in crops.items() if v}
    rows = [{"margin": m, "acc": round(acc[(m, False)], 4), "acc_aligned": round(acc[(m, True)], 4)}
            for m in MARGINS]
    best_m, best_a = select_margin(acc)
    raw_m, raw_a = max(acc, key=lambda key: (acc[key], -key[0]))
    b = np.array(boxes_rel)
    side = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
    result = {
        "what": "accuracy of the classifier on MTCNN crops of FER2013 PublicTest faces, per margin "
                "(extra context per side, fraction of the box's longer side)",
        "checkpoint": str(ckpt),
        "note": args.note,
        "arch": p.model.hparams.arch,
        "n_images": len(items),
        "n_detected": len(detected),
        "detection_rate": round(len(detected) / len(items), 4),
        "multiple_faces_rate": round(float(np.mean(np.array(n_faces) > 1)), 4),
        "detector": {"min_score": p.detector.min_score, "min_face": p.detector.min_face.px},
        "acc_direct_48px_all": round(float(direct.mean()), 4),
        "acc_direct_48px_detected": round(float(direct[det_idx].mean()), 4),
        "margins": rows,
        "best": {"margin": best_m, "align": best_a, "acc": round(acc[(best_m, best_a)], 4),
                 "rule": "argmax of the accuracy averaged over align on/off and over the margin and its "
                         "two neighbours in the grid (one grid step is within the noise of ~1000 faces)"},
        "best_single_cell": {"margin": raw_m, "align": raw_a, "acc": round(acc[(raw_m, raw_a)], 4)},
        "acc_standard_error": round(float(np.sqrt(0.25 / max(len(detected), 1))), 4),
        "framing": {
            "box_side_over_frame_median": round(float(np.median(side)), 4),
            "box_width_over_frame_median": round(float(np.median(b[:, 2] - b[:, 0])), 4),
            "box_height_over_frame_median": round(float(np.median(b[:, 3] - b[:, 1])), 4),
            "box_center_x_median": round(float(np.median((b[:, 0] + b[:, 2]) / 2)), 4),
            "box_center_y_median": round(float(np.median((b[:, 1] + b[:, 3]) / 2)), 4),
            # The margin at which the square crop would be exactly the FER frame.
            "frame_matching_margin_median": round(float(np.median((1 / side - 1) / 2)), 4),
        },
        "settings": {"seed": args.seed, "face_px": args.face_px, "canvas": args.canvas,
                     "padding": "edge", "root": str(args.root)},
        "wall_time_s": round(time.perf_counter() - start, 1),
    }
    write_json(args.out, result)
    print("| margin | acc | acc (aligned) |\n|---:|---:|---:|")
    for r in rows:
        print(f"| {r['margin']:.3f} | {r['acc']:.4f} | {r['acc_aligned']:.4f} |")
    print(f"direct 48 px: {result['acc_direct_48px_detected']:.4f} on the detected; detection rate "
          f"{result['detection_rate']:.3f}; best margin {best_m} (align={best_a}) -> {args.out}")
    print(json.dumps(result["framing"]))


if __name__ == "__main__":
    user_errors_exit(main)
