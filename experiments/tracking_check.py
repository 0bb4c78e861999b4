"""Labelled tracking check: videos made from the sample's FER2013 faces, with known identities.

    python experiments/tracking_check.py [--detect-every 1 3] [--seconds 3]

Scenes (640×360, 25 fps), each a video written to disk and read back through the real pipeline
(``iter_video_results``: decoding, MTCNN, ByteTrack, classification):

* ``moving``: three faces drifting at different speeds and directions;
* ``crossing``: two faces swapping sides at one height, one passing in front of the other;
* ``crossing_diagonal``: two faces crossing on diagonals, overlapping as they pass;
* ``occlusion``: a face passing behind a bar for about 0.3 s;
* ``leave_return``: a face leaving the frame and coming back 1.5 s later, past the tracker's
  1 s memory (a new track is expected, and counted as a fragment);
* ``grow_shrink``: a face growing from 56 to 190 px and back;
* ``empty``: frames with no face before, between and after two faces.

Per scene: recall per frame (ground-truth faces at least 60 % visible that a result's box matches,
IoU ≥ 0.3), ID switches (a face matched to another confirmed track than its last one, as CLEAR MOT
counts them), fragments (a face's run of matches broken while it stays visible), tracks per
identity, and false positives. The gate: at most one switch per crossing in the crossing scenes.

Writes experiments/results/tracking_check.json and .md.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "experiments" / "results"
SIZE = (640, 360)
FPS = 25.0


@dataclass
class Scene:
    name: str
    frames: list[Image.Image] = field(default_factory=list)
    truth: list[list[tuple[int, tuple[float, float, float, float], bool]]] = field(default_factory=list)
    crossings: int = 0


def pick_faces(n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` sample faces (different classes first) that MTCNN finds alone at 96 px with score ≥ 0.98."""
    from emotion.config import ASSETS_DIR
    from emotion.inference import FaceDetector

    det = FaceDetector(min_face=20)
    paths = sorted((ASSETS_DIR / "fer2013_sample" / "test").glob("*/PrivateTest_*"))
    rng = np.random.default_rng(seed)
    chosen, classes = [], set()
    for p in (paths[i] for i in rng.permutation(len(paths))):
        face = np.asarray(Image.open(p).convert("L"))
        canvas = Image.new("RGB", (192, 192), (128, 128, 128))
        canvas.paste(Image.fromarray(face).resize((96, 96), Image.Resampling.BICUBIC).convert("RGB"), (48, 48))
        d = det(canvas)
        if len(d) == 1 and d.scores[0] >= 0.98 and (p.parent.name not in classes or len(classes) >= 7):
            chosen.append(face)
            classes.add(p.parent.name)
            if len(chosen) == n:
                return chosen
    raise RuntimeError(f"only {len(chosen)} sample faces are found reliably")


def _background(rng: np.random.Generator) -> Image.Image:
    from experiments.detection_check import background

    return Image.fromarray(background(*SIZE, rng))


def render(name: str, faces: list[np.ndarray], paths: dict[int, list[tuple[float, float, float] | None]],
           n_frames: int, rng: np.random.Generator, occluders: list[tuple[int, int, int, int]] = (),
           crossings: int = 0) -> Scene:
    """Faces pasted along ``paths`` (identity → per frame ``(cx, cy, side)`` or None), later
    identities in front; ``occluders`` drawn over everything."""
    bg = _background(rng)
    scene = Scene(name, crossings=crossings)
    for t in range(n_frames):
        img = bg.copy()
        cover = np.zeros(SIZE[::-1], dtype=np.int16) - 1  # which identity each pixel shows (-1 none)
        placed = []
        for ident, path in paths.items():
            where = path[t]
            if where is None:
                continue
            cx, cy, side = where
            x1, y1 = round(cx - side / 2), round(cy - side / 2)
            img.paste(Image.fromarray(faces[ident]).resize((round(side), round(side)), Image.Resampling.BICUBIC)
                      .convert("RGB"), (x1, y1))
            cover[max(y1, 0):max(y1 + round(side), 0), max(x1, 0):max(x1 + round(side), 0)] = ident
            placed.append((ident, (x1, y1, x1 + round(side), y1 + round(side))))
        draw = ImageDraw.Draw(img)
        for box in occluders:
            draw.rectangle(box, fill=(70, 70, 80))
            cover[box[1]:box[3], box[0]:box[2]] = -1
        truth = [(ident, box, shown_enough(cover, ident, box, (box[2] - box[0]) * (box[3] - box[1])))
                 for ident, box in placed]
        scene.frames.append(img)
        scene.truth.append(truth)
    return scene


def shown_enough(cover: np.ndarray, ident: int, box: tuple[int, int, int, int], area: int) -> bool:
    """Whether at least 60 % of a face's ``area`` shows in ``cover`` (which identity each pixel shows)."""
    x1, y1, x2, y2 = box
    return bool((cover[max(y1, 0):max(y2, 0), max(x1, 0):max(x2, 0)] == ident).sum() >= 0.6 * area)


def _line(a: tuple[float, float, float], b: tuple[float, float, float], n: int) -> list[tuple[float, float, float]]:
    return [tuple(a[k] + (b[k] - a[k]) * t / max(n - 1, 1) for k in range(3)) for t in range(n)]


def scenes(seconds: float = 3.0, seed: int = 0) -> list[Scene]:
    faces = pick_faces(4, seed)
    rng = np.random.default_rng(seed)
    n = round(seconds * FPS)
    w, h = SIZE
    out = [
        render("moving", faces, {0: _line((80, 100, 96), (560, 140, 96), n),
                                 1: _line((560, 260, 88), (300, 220, 88), n),
                                 2: _line((320, 90, 80), (330, 280, 80), n)}, n, rng),
        render("crossing", faces, {0: _line((90, 180, 100), (550, 180, 100), n),
                                   1: _line((550, 180, 100), (90, 180, 100), n)}, n, rng, crossings=1),
        render("crossing_diagonal", faces, {0: _line((90, 90, 96), (550, 270, 96), n),
                                            1: _line((550, 90, 96), (90, 270, 96), n)}, n, rng, crossings=1),
        render("occlusion", faces, {0: _line((70, 180, 100), (570, 180, 100), n)}, n, rng,
               occluders=[(300, 100, 340, 260)]),
    ]
    gone = round(1.5 * FPS)
    out_and_back = _line((320, 180, 100), (600, 180, 100), n // 2), _line((600, 180, 100), (320, 180, 100), n // 2)
    path = out_and_back[0] + [None] * gone + out_and_back[1]
    out.append(render("leave_return", faces, {3: path}, len(path), rng))
    half = n // 2
    out.append(render("grow_shrink", faces, {2: _line((320, 180, 56), (320, 180, 190), half)
                                             + _line((320, 180, 190), (320, 180, 56), n - half)}, n, rng))
    blank = [None] * round(0.5 * FPS)
    seg = _line((200, 180, 100), (260, 180, 100), round(FPS))
    seg2 = _line((440, 180, 96), (400, 180, 96), round(FPS))
    out.append(render("empty", faces, {0: blank + seg + blank + seg + blank, 1: blank + seg2 + blank + seg2 + blank},
                      len(blank) * 3 + 2 * len(seg), rng))
    return out


def write_video(scene: Scene, path: Path) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    for img in scene.frames:
        writer.write(cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _assign(truth: list, faces: list, candidates) -> tuple[dict[int, int], list[int]]:
    """Hungarian matching of ground-truth boxes to result faces (IoU ≥ 0.3): ``{truth index: face
    index}`` and the candidate faces left over."""
    from scipy.optimize import linear_sum_assignment

    candidates = list(candidates)
    cost = np.array([[1 - _iou(g[1], faces[c].box) for c in candidates] for g in truth]).reshape(
        len(truth), len(candidates))
    rows, cols = linear_sum_assignment(cost) if cost.size else ([], [])
    pairs = {int(r): candidates[int(c)] for r, c in zip(rows, cols) if cost[r, c] <= 0.7}
    return pairs, [c for c in candidates if c not in pairs.values()]


def score(scene: Scene, results: list) -> dict:
    """Recall, ID switches, fragments, tracks per identity and false positives of ``results``
    (one :class:`ImageResult` per frame) against the scene's ground truth."""
    visible = matched = false_pos = switches = fragments = 0
    last_track: dict[int, int] = {}
    was_matched: dict[int, bool] = {}
    tracks_of: dict[int, set[int]] = {}
    for truth, result in zip(scene.truth, results):
        faces = result.faces
        shown = [g for g in truth if g[2]]
        hidden = [g for g in truth if not g[2]]
        # Faces in view are matched first; a result on a hidden face (mostly occluded, or mostly out
        # of the frame) is neither a match nor a false positive.
        pairs, rest = _assign(shown, faces, range(len(faces)))
        hidden_pairs, rest = _assign(hidden, faces, rest)
        false_pos += len(rest)
        for gi, (ident, _, _) in enumerate(shown):
            visible += 1
            if gi in pairs:
                matched += 1
                track = faces[pairs[gi]].track
                if track is not None and track >= 0:
                    if ident in last_track and last_track[ident] != track:
                        switches += 1
                    last_track[ident] = track
                    tracks_of.setdefault(ident, set()).add(track)
                if was_matched.get(ident) is False:
                    fragments += 1
                was_matched[ident] = True
            elif was_matched.get(ident):
                was_matched[ident] = False
    return {"scene": scene.name, "frames": len(results), "faces": int(visible), "matched": int(matched),
            "recall": round(matched / visible, 4) if visible else None, "id_switches": switches,
            "fragments": fragments, "crossings": scene.crossings,
            "tracks_per_identity": round(float(np.mean([len(v) for v in tracks_of.values()])), 2) if tracks_of else 0,
            "false_positives": false_pos}


def run(scene_list: list[Scene], folder: Path, detect_every: int, predictor=None, refine: bool = False,
        adaptive: bool = False) -> list[dict]:
    from emotion.inference import FaceEmotionPredictor
    from emotion.inference.video import iter_video_results

    predictor = predictor or FaceEmotionPredictor.from_checkpoint(device="cpu")
    rows = []
    for scene in scene_list:
        path = folder / f"{scene.name}.avi"
        if not path.exists():
            write_video(scene, path)
        start = time.perf_counter()
        results = [f.result for f in iter_video_results(predictor, path, detect_every=detect_every, refine=refine,
                                                        adaptive=adaptive)]
        seconds = time.perf_counter() - start
        rows.append({**score(scene, results), "detect_every": detect_every, "refine": refine, "adaptive": adaptive,
                     "fps": round(len(results) / seconds, 1)})
    return rows


def to_markdown(rows: list[dict]) -> str:
    lines = ["Labelled tracking check (`experiments/tracking_check.py`): sample faces moving over textured "
             "backgrounds, 640×360 at 25 fps, through the real pipeline (decode, MTCNN, ByteTrack, classifier).",
             "Refined: between detections, each carried face found again by MTCNN's last stage "
             "(`--refine-tracks`). Adaptive: a detection at least every K-th frame, and between whenever the tracks "
             "are unsettled (`VideoOptions.adaptive`, the video default).",
             "", "| scene | detect every | frames | faces | recall | ID switches | crossings | fragments | "
             "tracks per identity | false positives | frames/s |", "|---|" + "---:|" * 10]
    for r in rows:
        every = f"{r['detect_every']}" + (", refined" if r.get("refine") else "") + (", adaptive" if r.get("adaptive")
                                                                                   else "")
        lines.append(f"| {r['scene']} | {every} | {r['frames']} | {r['faces']} | {r['recall']:.1%} | "
                     f"{r['id_switches']} | {r['crossings']} | {r['fragments']} | {r['tracks_per_identity']} | "
                     f"{r['false_positives']} | {r['fps']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    import sys
    import tempfile

    import torch

    sys.path.insert(0, str(ROOT))
    from emotion.device import device_name
    from emotion.io import write_results

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--detect-every", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--refine", action="store_true", help="also each detect-every > 1 with refined carries")
    ap.add_argument("--adaptive", action="store_true", help="also each detect-every > 1 with the adaptive schedule")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    scene_list = scenes(args.seconds)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in args.detect_every:
            rows += run(scene_list, Path(tmp), k)
            if args.refine and k > 1:
                rows += run(scene_list, Path(tmp), k, refine=True)
            if args.adaptive and k > 1:
                rows += run(scene_list, Path(tmp), k, adaptive=True)
    md = to_markdown(rows)
    print(md)
    data = {"device": device_name("cpu"), "threads": args.threads, "rows": rows}
    write_results(RESULTS / "tracking_check.json", data, md)


if __name__ == "__main__":
    main()
