"""What an explanation costs and whether it points at what matters (#34).

    python experiments/bench_explain.py [--faces 200] [--out experiments/results/explain]

For each shipped model and each method (occlusion, Grad-CAM), on the bundled sample's PublicTest and
PrivateTest faces: milliseconds per face (median of 3 runs, beside the plain classification of the same
faces, as a ratio), and the deletion check: the mean fall of the predicted class's probability when the
map's top 20 % of pixels are set to the face's mean grey, against a random 20 % of pixels (3 draws) and
a random 20 % in blobs (the top fifth of a random 5×5 map, upsampled as Grad-CAM's are), and the map's
bottom 20 %. Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emotion.device import machine_name  # noqa: E402
from emotion.io import write_json  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", type=int, default=200)
    ap.add_argument("--models", nargs="+", default=["default", "fast", "fer2013"])
    ap.add_argument("--out", type=Path, default=ROOT / "experiments" / "results" / "explain")
    args = ap.parse_args()

    from emotion.config import ASSETS_DIR
    from emotion.inference import FaceEmotionPredictor
    from emotion.inference.trust.explain import delete_top, saliency

    files = sorted((ASSETS_DIR / "fer2013_sample").glob("test/*/*.jpg"))[: args.faces]
    faces = np.stack([np.asarray(Image.open(f).convert("L")) for f in files])
    rows = np.arange(len(faces))
    rng_blobs = np.random.default_rng(1)
    blobs = torch.nn.functional.interpolate(torch.tensor(rng_blobs.random((len(faces), 1, 5, 5)), dtype=torch.float32),
                                            size=(48, 48), mode="bilinear", align_corners=False)[:, 0].numpy()
    record = {"command": "python " + " ".join(sys.argv), "cpu": machine_name(), "threads": torch.get_num_threads(),
              "faces": int(len(faces)), "share": 0.2, "models": {}}
    for name in args.models:
        p = FaceEmotionPredictor.from_checkpoint(name, device="cpu", faces_are_crops=True)
        probs = p.classify(faces, tta="none")
        target = probs.argmax(1)
        base = probs[rows, target]
        fall = lambda masked, p=p, base=base, target=target: float(  # noqa: E731
            (base - p.classify(masked, tta="none")[rows, target]).mean())
        plain = []
        for _ in range(3):
            t = time.perf_counter()
            p.classify(faces, tta="none")
            plain.append(time.perf_counter() - t)
        plain_ms = 1000 * statistics.median(plain) / len(faces)
        out = {"classify_ms_per_face": round(plain_ms, 3), "methods": {}}
        for method in ("occlusion", "gradcam"):
            times, maps = [], None
            for _ in range(3):
                t = time.perf_counter()
                maps = saliency(p, faces, target.tolist(), method)
                times.append(time.perf_counter() - t)
            ms = 1000 * statistics.median(times) / len(faces)
            rng = np.random.default_rng(0)
            deletion = {"top": fall(delete_top(faces, maps, 0.2)), "bottom": fall(delete_top(faces, 1 - maps, 0.2)),
                        "random_pixels": float(np.mean([fall(delete_top(faces, maps, 0.2, rng)) for _ in range(3)])),
                        "random_blobs": fall(delete_top(faces, blobs, 0.2))}
            out["methods"][method] = {"ms_per_face": round(ms, 2), "x_classify": round(ms / plain_ms, 1),
                                      "deletion": {k: round(v, 4) for k, v in deletion.items()},
                                      "passes": deletion["top"] > deletion["random_pixels"]}
            print(name, method, out["methods"][method], flush=True)
        record["models"][name] = out
    write_json(args.out.with_suffix(".json"), record)
    lines = [f"Explanations (written by `{record['command']}`; {record['cpu']}, {record['threads']} threads; "
             f"{record['faces']} faces of the bundled sample's PublicTest and PrivateTest). Deletion: mean fall of the "
             "predicted class's probability when 20 % of the pixels are set to the face's mean grey.", "",
             "| model | method | ms / face | × classify | top 20 % | random 20 % (pixels) | random 20 % (blobs) | "
             "bottom 20 % | passes |", "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for name, m in record["models"].items():
        for method, r in m["methods"].items():
            d = r["deletion"]
            lines.append(f"| {name} | {method} | {r['ms_per_face']} | {r['x_classify']} | {d['top']:.3f} | "
                         f"{d['random_pixels']:.3f} | {d['random_blobs']:.3f} | {d['bottom']:.3f} | "
                         f"{'yes' if r['passes'] else 'no'} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"-> {args.out}.md")


if __name__ == "__main__":
    main()
