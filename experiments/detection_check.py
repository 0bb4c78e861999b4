"""Labelled detection check: FER2013 faces pasted at known sizes and places among hard negatives.

    python experiments/detection_check.py [--faces ROOT] [--canvases 24] [--seed 0]

Each canvas is a textured background with faces pasted from 24 to 192 px without overlap, and hard
negatives beside them: faces upside down, faces with their 4×4 blocks shuffled, noise and
checkerboard patches. The same canvases go through three detectors:

* ``before``: facenet-pytorch's own ``MTCNN.detect`` (min_face_size 20) and score ≥ 0.9, which is
  what ``FaceDetector`` ran before it had its own MTCNN;
* ``min_face=20``: ``FaceDetector(min_face=20)``, our MTCNN over the whole pyramid;
* ``default``: ``FaceDetector()``, which searches faces from ``min_face_for`` each canvas.

A detection finds a pasted face when its box centre lies in the face's square and its longer side
is within 0.5-1.6× the square's; each face is found once. Any other detection is a false positive.
A face is *lost* when ``before`` found it and the other did not; for ``default`` the faces pasted
or boxed by ``before`` smaller than ``min_face_for`` the canvas are counted apart (they are not
searched for, by design). Photos in
``--photos`` are compared too, with ``before``'s faces as the labels (IoU ≥ 0.5).

Writes experiments/results/detection_check.json and .md.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from emotion.config import ASSETS_DIR
from emotion.data.preprocess import IMAGE_SUFFIXES
from emotion.inference import FaceDetector, load_image
from emotion.inference.detection.detector import Detections
from emotion.io import write_results

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "experiments" / "results"
SIZES = (24, 32, 40, 48, 64, 96, 128, 192)
CANVAS_SIZES = ((1200, 800), (640, 480), (1600, 900), (400, 300))
GAP = 12


@dataclass(frozen=True)
class Canvas:
    image: Image.Image
    faces: list[tuple[int, int, int]]  # (x, y, side) of each pasted face
    negatives: list[tuple[int, int, int]]


def background(w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth two-colour gradient with stripes and grain: texture for the first stage to chew on."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a, b = rng.uniform(40, 220, 3), rng.uniform(40, 220, 3)
    t = (xx / w * rng.uniform(0.3, 1) + yy / h * rng.uniform(0.3, 1))[..., None] / 2
    img = a * (1 - t) + b * t
    img += 18 * np.sin(xx * rng.uniform(0.02, 0.2) + yy * rng.uniform(0.02, 0.2))[..., None]
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def negative(face: np.ndarray, side: int, kind: int, rng: np.random.Generator) -> Image.Image:
    """A face-sized patch that is not a face."""
    if kind == 0:  # upside down
        patch = face[::-1]
    elif kind == 1:  # 4×4 blocks of the face, shuffled
        blocks = [face[i:i + 12, j:j + 12] for i in range(0, 48, 12) for j in range(0, 48, 12)]
        order = rng.permutation(16)
        patch = np.block([[blocks[order[4 * r + c]] for c in range(4)] for r in range(4)])
    elif kind == 2:  # smooth noise
        patch = np.asarray(Image.fromarray(rng.integers(0, 256, (6, 6), dtype=np.uint8)).resize((48, 48)))
    else:  # checkerboard
        patch = ((np.indices((48, 48)).sum(0) // 6) % 2 * 200 + 28).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(patch)).resize((side, side), Image.Resampling.BICUBIC).convert("RGB")


def make_canvas(faces: list[np.ndarray], size: tuple[int, int], rng: np.random.Generator,
                n_faces: int = 14, n_negatives: int = 6) -> Canvas:
    """Paste up to ``n_faces`` faces and ``n_negatives`` negatives at random sizes, apart from each other."""
    w, h = size
    canvas = Image.fromarray(background(w, h, rng))
    taken: list[tuple[int, int, int]] = []
    placed: dict[bool, list[tuple[int, int, int]]] = {True: [], False: []}
    wanted = [True] * n_faces + [False] * n_negatives
    for is_face in wanted:
        for _ in range(200):  # rejection sampling of a free spot
            side = int(rng.choice([s for s in SIZES if s <= min(w, h) // 3]))
            x, y = int(rng.integers(0, w - side)), int(rng.integers(0, h - side))
            if all(x + side + GAP <= tx or tx + ts + GAP <= x or y + side + GAP <= ty or ty + ts + GAP <= y
                   for tx, ty, ts in taken):
                break
        else:
            continue
        face = faces[int(rng.integers(len(faces)))]
        patch = (Image.fromarray(face).resize((side, side), Image.Resampling.BICUBIC).convert("RGB") if is_face
                 else negative(face, side, int(rng.integers(4)), rng))
        canvas.paste(patch, (x, y))
        taken.append((x, y, side))
        placed[is_face].append((x, y, side))
    return Canvas(canvas, placed[True], placed[False])


def match(det: Detections, faces: list[tuple[int, int, int]]) -> tuple[dict[int, float], int]:
    """The faces found (index → the detection's longer side), and the count of detections that found none."""
    found: dict[int, float] = {}
    stray = 0
    for x1, y1, x2, y2 in det.boxes:
        cx, cy, side = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1)
        hit = next((i for i, (x, y, s) in enumerate(faces) if i not in found
                    and x <= cx < x + s and y <= cy < y + s and 0.5 * s <= side <= 1.7 * s), None)
        if hit is None:
            stray += 1
        else:
            found[hit] = float(side)
    return found, stray


class Before:
    """The detector as it was: facenet's MTCNN.detect at its 20-px default, then score ≥ 0.9 and
    box ≥ 20 px."""

    def __init__(self, min_score: float = 0.9) -> None:
        from facenet_pytorch import MTCNN

        self.mtcnn = MTCNN(keep_all=True, select_largest=False, post_process=False, min_face_size=20)
        self.min_score = min_score

    def __call__(self, image: Image.Image) -> Detections:
        boxes, scores, points = self.mtcnn.detect(image, landmarks=True)
        if boxes is None:
            return Detections.empty()
        boxes, scores = np.asarray(boxes, np.float64), np.asarray(scores, np.float64)
        keep = (scores >= self.min_score) & (np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) >= 20)
        return Detections(boxes[keep], scores[keep], np.asarray(points, np.float64)[keep])


def load_faces(root: Path) -> list[np.ndarray]:
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return [np.asarray(Image.open(p).convert("L")) for p in paths]


def detectors() -> dict[str, object]:
    return {"before": Before(), "min_face=20": FaceDetector(min_face=20), "default": FaceDetector()}


def check(canvases: list[Canvas], dets: dict[str, object]) -> dict:
    """Faces found, lost and false positives by each detector, per pasted size; ms per canvas."""
    rows = {s: {"faces": 0, **{f"{n}_found": 0 for n in dets}, **{f"{n}_lost": 0 for n in dets if n != "before"},
                "default_lost_below_floor": 0} for s in SIZES}
    stray = {n: 0 for n in dets}
    on_negatives = {n: 0 for n in dets}
    ms: dict[str, list[float]] = {n: [] for n in dets}
    for c in canvases:
        floor = dets["default"].min_face_for(c.image.size)
        found = {}
        for name, det in dets.items():  # taking turns on each canvas: both see the same load
            t = time.perf_counter()
            d = det(c.image)
            ms[name].append((time.perf_counter() - t) * 1000)
            found[name], n_stray = match(d, c.faces)
            stray[name] += n_stray
            on_negatives[name] += len(match(d, c.negatives)[0])
        for i, (_, _, side) in enumerate(c.faces):
            row = rows[side]
            row["faces"] += 1
            for name in dets:
                row[f"{name}_found"] += i in found[name]
                if name != "before" and i in found["before"] and i not in found[name]:
                    row[f"{name}_lost"] += 1
                    if name == "default":  # below the floor: pasted or boxed smaller than min_face_for
                        row["default_lost_below_floor"] += min(side, found["before"][i]) < floor
    total = {k: sum(r[k] for r in rows.values()) for k in next(iter(rows.values()))}
    return {"canvases": len(canvases), "faces": sum(len(c.faces) for c in canvases),
            "negatives": sum(len(c.negatives) for c in canvases),
            "by_size": [{"size": s, **r} for s, r in rows.items()],
            "found": {n: total[f"{n}_found"] for n in dets},
            "false_positives": stray, "negatives_taken_for_faces": on_negatives,
            "lost_min_face_20": total["min_face=20_lost"],
            "lost_default_at_or_above_floor": total["default_lost"] - total["default_lost_below_floor"],
            "lost_default_below_floor": total["default_lost_below_floor"],
            "median_ms": {n: round(statistics.median(v), 1) for n, v in ms.items()}}


def check_photos(photos: list[Path], dets: dict[str, object]) -> list[dict]:
    """Each photo: ``before``'s faces as labels; how many the others find again (IoU ≥ 0.5)."""
    out = []
    for path in photos:
        image, _ = load_image(path)
        labels = dets["before"](image)
        row = {"photo": path.name, "size": list(image.size), "before_faces": len(labels)}
        for name, det in dets.items():
            if name == "before":
                continue
            d = det(image)
            same = sum(any(_iou(a, b) >= 0.5 for b in d.boxes) for a in labels.boxes)
            row[f"{name}_faces"], row[f"{name}_same"] = len(d), same
        out.append(row)
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def markdown(doc: dict) -> str:
    c = doc["composites"]
    names = list(c["found"])
    lines = [f"Detection check (`python experiments/detection_check.py`): {c['canvases']} composites "
             f"({', '.join(f'{w}×{h}' for w, h in CANVAS_SIZES)}) holding {c['faces']} FER2013 faces from "
             f"`{doc['faces_from']}` and {c['negatives']} hard negatives; seed {doc['seed']}, "
             f"{doc['threads']} torch threads.", "",
             "| face px | faces | " + " | ".join(f"`{n}` found" for n in names)
             + " | lost by `min_face=20` | lost by `default` | of which below its floor |",
             "|---:|---:|" + "---:|" * (len(names) + 3)]
    for r in c["by_size"]:
        lines.append(f"| {r['size']} | {r['faces']} | " + " | ".join(str(r[f'{n}_found']) for n in names)
                     + f" | {r['min_face=20_lost']} | {r['default_lost']} | {r['default_lost_below_floor']} |")
    lines += ["", "| | " + " | ".join(f"`{n}`" for n in names) + " |", "|---|" + "---:|" * len(names),
              "| faces found | " + " | ".join(str(c["found"][n]) for n in names) + " |",
              "| false positives | " + " | ".join(str(c["false_positives"][n]) for n in names) + " |",
              "| hard negatives taken for faces | " + " | ".join(str(c["negatives_taken_for_faces"][n])
                                                           for n in names) + " |",
              "| median ms per composite | " + " | ".join(str(c["median_ms"][n]) for n in names) + " |", "",
              f"Faces found by `before` and lost: by `min_face=20` **{c['lost_min_face_20']}**; by `default` "
              f"**{c['lost_default_at_or_above_floor']}** pasted and boxed by `before` at or above its floor "
              "(`FaceDetector.min_face_for`: 1/12 of the shorter side in MTCNN's steps, 20 to 56 px) and "
              f"{c['lost_default_below_floor']} pasted or boxed smaller, which it does not search "
              "(`min_face=20` does)."]
    if doc.get("photos"):
        lines += ["", "Photos, with `before`'s faces as the labels:", "",
                  "| photo | `before` faces | `min_face=20` faces (same) | `default` faces (same) |",
                  "|---|---:|---:|---:|"]
        lines += [f"| {p['photo']} ({p['size'][0]}×{p['size'][1]}) | {p['before_faces']} | "
                  f"{p['min_face=20_faces']} ({p['min_face=20_same']}) | {p['default_faces']} ({p['default_same']}) |"
                  for p in doc["photos"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", default=str(ASSETS_DIR / "fer2013_sample"), help="folder of face images")
    ap.add_argument("--photos", default=str(ROOT.parent / "shared" / "photos"), help="folder of photos, if any")
    ap.add_argument("--canvases", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(RESULTS / "detection_check.json"))
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    faces = load_faces(Path(args.faces))
    canvases = [make_canvas(faces, CANVAS_SIZES[i % len(CANVAS_SIZES)], rng) for i in range(args.canvases)]
    dets = detectors()
    photos = sorted(p for p in Path(args.photos).glob("*") if p.suffix.lower() in IMAGE_SUFFIXES) \
        if Path(args.photos).is_dir() else []
    try:
        faces_from = str(Path(args.faces).resolve().relative_to(ROOT))
    except ValueError:
        faces_from = args.faces
    doc = {"seed": args.seed, "faces_from": faces_from, "threads": torch.get_num_threads(),
           "composites": check(canvases, dets), "photos": check_photos(photos, dets)}
    doc["markdown"] = markdown(doc)
    print(doc["markdown"])
    write_results(args.out, doc, doc["markdown"])


if __name__ == "__main__":
    main()
