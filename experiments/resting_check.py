"""Resting faces: does a model call a face "sad" when people call it neutral? A check anyone can run
from the package alone (the sample's faces and the shipped FER+ votes), on videos, beside the FER+
Test figures of ``experiments/ferplus_check.py``.

    python experiments/resting_check.py [--models default fast fer2013 PATH ...] [--seconds 4]

Faces: the sample's PublicTest and PrivateTest faces whose ten FER+ annotators' plurality is neutral
and that MTCNN finds alone (score ≥ 0.98 at 96 px). Videos (640×360, 25 fps, textured backgrounds, written
to disk and read back through the real pipeline: decode, MTCNN, tracker, classifier): three such faces
drifting at a time, in as many clips as the faces allow. Per model: each track's dominant emotion (the
argmax of its mean probabilities), the share of tracks whose dominant emotion is sad and is neutral,
and per-frame neutral recall and sad share over every matched face.

Writes experiments/results/resting_check.json and .md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from experiments.tracking_check import FPS, SIZE, _line, render, write_video  # noqa: E402


def resting_faces(limit: int = 12) -> list[np.ndarray]:
    """The sample's crowd-neutral PublicTest/PrivateTest faces that MTCNN finds alone, in file order."""
    from PIL import Image

    from emotion.config import ASSETS_DIR
    from emotion.data.classes import CLASS_NAMES
    from emotion.data.datamodule import FER2013DataModule
    from emotion.data.sources.ferplus import SHIPPED_VOTES, plurality_labels
    from emotion.inference import FaceDetector

    dm = FER2013DataModule(str(ASSETS_DIR / "fer2013_sample"), cache_dir=None, num_workers=0,
                           ferplus=str(SHIPPED_VOTES))
    dm.setup()
    det = FaceDetector(min_face=20)
    out = []
    for split in ("val", "test"):
        images = dm.arrays[split][0]
        crowd = plurality_labels(dm.votes(split))
        for face in images[crowd == CLASS_NAMES.index("neutral")]:
            canvas = Image.new("RGB", (192, 192), (128, 128, 128))
            canvas.paste(Image.fromarray(face).resize((96, 96), Image.Resampling.BICUBIC).convert("RGB"), (48, 48))
            d = det(canvas)
            if len(d) == 1 and d.scores[0] >= 0.98:
                out.append(face)
            if len(out) == limit:
                return out
    return out


def clips(faces: list[np.ndarray], seconds: float, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    n = round(seconds * FPS)
    out = []
    for k in range(0, len(faces) - 2, 3):
        trio = faces[k:k + 3]
        out.append(render(f"resting_{k // 3}", trio, {0: _line((90, 110, 100), (540, 130, 100), n),
                                                      1: _line((560, 250, 92), (260, 230, 92), n),
                                                      2: _line((330, 100, 84), (340, 270, 84), n)}, n, rng))
    return out


def check(model: str, scene_files: list[Path]) -> dict:
    from emotion.inference import FaceEmotionPredictor
    from emotion.inference.video import iter_video_results

    predictor = FaceEmotionPredictor.from_checkpoint(model, device="cpu")
    names = predictor.class_names
    sad, neutral = names.index("sad"), names.index("neutral")
    tracks, frames_faces = {}, []
    start = time.perf_counter()
    for i, path in enumerate(scene_files):
        for frame in iter_video_results(predictor, path):
            for face in frame.result.faces:
                p = np.array([face.probabilities[c] for c in names])
                frames_faces.append(int(p.argmax()))
                if face.track is not None and face.track >= 0:
                    tracks.setdefault((i, face.track), []).append(p)
    dominant = [int(np.mean(ps, 0).argmax()) for ps in tracks.values() if len(ps) >= FPS / 2]
    per_frame = np.array(frames_faces)
    return {"model": model, "tracks": len(dominant),
            "tracks_sad": round(float(np.mean([d == sad for d in dominant])), 4) if dominant else None,
            "tracks_neutral": round(float(np.mean([d == neutral for d in dominant])), 4) if dominant else None,
            "track_labels": [names[d] for d in dominant], "faces": int(len(per_frame)),
            "frame_neutral_recall": round(float((per_frame == neutral).mean()), 4) if len(per_frame) else None,
            "frame_sad_share": round(float((per_frame == sad).mean()), 4) if len(per_frame) else None,
            "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    import torch

    from emotion.io import write_json

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["default", "fast"])
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "experiments" / "results" / "resting_check")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    faces = resting_faces()
    scenes = clips(faces, args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        files = [write_video(s, Path(tmp) / f"{s.name}.avi") for s in scenes]
        rows = [check(m, files) for m in args.models]
    record = {"faces": len(faces), "clips": len(scenes), "seconds_per_clip": args.seconds, "size": SIZE, "fps": FPS,
              "rows": rows, "command": "python " + " ".join(sys.argv)}
    write_json(args.out.with_suffix(".json"), record)
    md = [f"Resting faces (`{record['command']}`): {len(faces)} sample faces the FER+ crowd calls neutral, "
          f"{len(scenes)} clips of three drifting faces ({args.seconds:g} s, {SIZE[0]}×{SIZE[1]}, {FPS:g} fps) "
          "through the real video pipeline.", "",
          "| model | tracks | tracks called sad | tracks called neutral | faces (frames) | neutral per frame | "
          "sad per frame | track labels |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    md += [f"| `{r['model']}` | {r['tracks']} | {r['tracks_sad']:.0%} | {r['tracks_neutral']:.0%} | {r['faces']} | "
           f"{r['frame_neutral_recall']:.1%} | {r['frame_sad_share']:.1%} | {', '.join(r['track_labels'])} |"
           for r in rows]
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
