"""Build ``tests/assets/sample_faces.jpg``: a multi-face test photo made only of shipped data.

The repository may not copy ``../shared`` photos, so the test photo tiles six faces of the bundled
FER2013 sample (``emotion/assets/fer2013_sample``), one per class (disgust, the rarest, is
skipped), each upscaled to 160 px, on a plain canvas with gaps. MTCNN does not find every
upscaled 48×48 FER face (tight crops, low resolution): candidates are tried in file-name order
and the first face of each class that MTCNN finds confidently on its own tile is used. The
composite is then checked: exactly one detection per tile.

Usage::

    python experiments/make_sample_photo.py [--out tests/assets/sample_faces.jpg]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from emotion.config import ASSETS_DIR
from emotion.errors import user_errors_exit
from emotion.inference import FaceDetector

ROOT = Path(__file__).resolve().parent.parent

CLASSES = ("happy", "surprise", "angry", "sad", "neutral", "fear")  # grid order, row by row
FACE, GAP, COLS = 160, 48, 3
BACKGROUND = (228, 233, 238)  # a plain, slightly blue-grey wall


def tile_position(k: int) -> tuple[int, int]:
    """Top-left corner of tile ``k`` on the canvas."""
    r, c = divmod(k, COLS)
    return GAP + c * (FACE + GAP), GAP + r * (FACE + GAP)


def face_tile(path: Path) -> Image.Image:
    return Image.open(path).convert("L").resize((FACE, FACE), Image.Resampling.BICUBIC).convert("RGB")


def found_alone(detector: FaceDetector, tile: Image.Image) -> bool:
    """Does MTCNN find exactly one confident face in this tile on the canvas colour?"""
    canvas = Image.new("RGB", (FACE + 2 * GAP, FACE + 2 * GAP), BACKGROUND)
    canvas.paste(tile, (GAP, GAP))
    det = detector(canvas)
    return len(det) == 1 and float(det.scores[0]) >= 0.99


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "tests" / "assets" / "sample_faces.jpg"))
    args = ap.parse_args()

    detector = FaceDetector("cpu")  # the predictor's defaults: MTCNN's result depends on its pyramid
    sample = ASSETS_DIR / "fer2013_sample"
    # Candidates per class that MTCNN finds alone; a face that it then misses in the composite
    # (the scale pyramid differs with the image size) is replaced by the next candidate.
    pools = {cls: (f for f in sorted(sample.glob(f"*/{cls}/*.jpg")) if found_alone(detector, face_tile(f)))
             for cls in CLASSES}
    chosen: list[tuple[str, Path]] = []
    for cls in CLASSES:
        f = next(pools[cls], None)
        if f is None:
            sys.exit(f"error: MTCNN finds none of the '{cls}' sample faces")
        chosen.append((cls, f))
    rows = -(-len(chosen) // COLS)
    for _attempt in range(20):
        canvas = Image.new("RGB", (GAP + COLS * (FACE + GAP), GAP + rows * (FACE + GAP)), BACKGROUND)
        for k, (_, f) in enumerate(chosen):
            canvas.paste(face_tile(f), tile_position(k))
        jpeg = io.BytesIO()
        canvas.save(jpeg, format="JPEG", quality=90, optimize=True)
        det = detector(Image.open(jpeg).convert("RGB"))  # check what the tests will read
        centres = (det.boxes[:, :2] + det.boxes[:, 2:]) / 2
        hits = [int((cy - GAP) // (FACE + GAP)) * COLS + int((cx - GAP) // (FACE + GAP)) for cx, cy in centres]
        # Exactly one face per tile, each well above the predictor's 0.9 score threshold.
        missed = [k for k in range(len(chosen)) if hits.count(k) != 1
                  or min(s for h, s in zip(hits, det.scores) if h == k) < 0.98]
        if not missed and len(hits) == len(chosen):
            break
        for k in missed:
            cls = chosen[k][0]
            f = next(pools[cls], None)
            if f is None:
                sys.exit(f"error: no '{cls}' sample face is found in the composite")
            chosen[k] = (cls, f)
    else:
        sys.exit("error: could not build a composite in which MTCNN finds every face")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(jpeg.getvalue())
    manifest = [{"tile": k, "position": tile_position(k), "class": c, "source": str(f.relative_to(ASSETS_DIR))}
                for k, (c, f) in enumerate(chosen)]
    out.with_suffix(".json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{out}: {canvas.size[0]}×{canvas.size[1]}, {len(chosen)} faces, detection scores "
          f"{np.round(det.scores, 3).tolist()}")


if __name__ == "__main__":
    user_errors_exit(main)
