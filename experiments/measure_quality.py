"""Measure what face quality costs the model, and choose the abstention defaults from it (#34).

    python experiments/measure_quality.py [--root ../shared/data/fer2013] [--checkpoint default] [--write-constants]

On FER2013 PublicTest (val; PrivateTest is never read) with the FER+ crowd's plurality as the answer
(the default model's question), the model classifies the faces as they are and degraded copies of them:

* **shrunk**: down to a side of 8-40 px (area), back up to 48 (bicubic), as a small face in a photo is;
  its size is given as the detector box that crop came from (crop side / (1 + 2 × DEFAULT_MARGIN));
* **blurred**: Gaussian blur of radius 0.6-3 px;
* **rotated**: 10-45 degrees in-plane (edges repeated), as an unaligned tilted head is.

From them, each part of :class:`~emotion.inference.trust.FaceQuality` gets a table of relative accuracy
(accuracy at that value over accuracy on the clean faces, made monotone by pooling adjacent violators):
size from the shrunk copies, sharpness from the clean and blurred copies (binned by measured sharpness),
roll from the rotated copies, and yaw from the clean faces themselves, re-detected by MTCNN at 3× and
binned by the yaw of their landmarks. Then the defaults, by one rule: a threshold holds back the faces
the model gets wrong more often than right.

* ``MIN_QUALITY``: the largest quality (steps of 0.05) at which the faces below it, pooled over the clean
  and degraded copies, are right at most half the time;
* ``ABSTAIN``: the largest top probability (steps of 0.05) at which the clean faces below it are right at
  most half the time.

Writes ``experiments/results/quality.json`` and ``quality.md`` (accuracy against coverage per set and
threshold); ``--write-constants`` copies the tables and defaults into ``emotion/inference/trust/quality.py``.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emotion.io import write_json  # noqa: E402

SHRINK = [40, 32, 24, 20, 16, 12, 8]  # crop side, px
BLUR = [0.6, 1.0, 1.5, 2.0, 3.0]  # Gaussian radius, px of the 48-px face
ROTATE = [10, 20, 30, 45]  # degrees
YAW_BINS = [0, 10, 20, 30, 45, 90]
GRID = [round(0.05 * i, 2) for i in range(21)]


def shrink(face: np.ndarray, side: int) -> np.ndarray:
    small = Image.fromarray(face).resize((side, side), Image.Resampling.BOX)
    return np.asarray(small.resize((48, 48), Image.Resampling.BICUBIC))


def blur(face: np.ndarray, radius: float) -> np.ndarray:
    return np.asarray(Image.fromarray(face).filter(ImageFilter.GaussianBlur(radius)))


def rotate(face: np.ndarray, degrees: float) -> np.ndarray:
    big = Image.fromarray(np.pad(face, 24, mode="edge"))
    return np.asarray(big.rotate(degrees, Image.Resampling.BICUBIC))[24:72, 24:72]


def pava(x: np.ndarray, y: np.ndarray, w: np.ndarray, increasing: bool = True) -> np.ndarray:
    """Weighted isotonic regression of ``y`` on sorted ``x`` (pool adjacent violators)."""
    order = np.argsort(x)
    ys, ws = list(y[order] if increasing else -y[order]), list(w[order])
    blocks = [[v, wt, 1] for v, wt in zip(ys, ws)]
    out: list[list[float]] = []
    for b in blocks:
        out.append(b)
        while len(out) > 1 and out[-2][0] > out[-1][0]:
            v2, w2, n2 = out.pop()
            v1, w1, n1 = out.pop()
            out.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    fitted = np.concatenate([[v] * int(n) for v, _, n in out])
    res = np.empty_like(fitted)
    res[order] = fitted if increasing else -fitted
    return res


def table(values: np.ndarray, rel: np.ndarray, counts: np.ndarray, increasing: bool) -> list[list[float]]:
    fitted = np.minimum(pava(values, rel, counts, increasing), 1.0)
    order = np.argsort(values)
    return [[round(float(values[i]), 3), round(float(fitted[i]), 3)] for i in order]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=str(ROOT.parent / "shared" / "data" / "fer2013"))
    ap.add_argument("--checkpoint", default="default", help="a bundled name, .ckpt or exported folder")
    ap.add_argument("--out", type=Path, default=ROOT / "experiments" / "results" / "quality")
    ap.add_argument("--write-constants", action="store_true")
    args = ap.parse_args()

    from emotion.data.datamodule import FER2013DataModule
    from emotion.data.sources.ferplus import SHIPPED_VOTES, plurality_labels
    from emotion.inference import DEFAULT_MARGIN, FaceEmotionPredictor
    from emotion.inference.detection import MinFace
    from emotion.inference.trust import head_pose, sharpness

    start = time.perf_counter()
    dm = FER2013DataModule(args.root, num_workers=0, ferplus=str(SHIPPED_VOTES))
    dm.setup()
    images = dm.arrays["val"][0]
    crowd = plurality_labels(dm.votes("val"))
    keep = crowd >= 0
    images, crowd = images[keep], crowd[keep]
    train_ratio = sharpness(dm.arrays["train"][0])  # relative to the constant; its median gives the constant
    from emotion.inference.trust.quality import SHARPNESS_REF
    sharpness_ref = float(np.median(train_ratio) * SHARPNESS_REF)

    p = FaceEmotionPredictor.from_checkpoint(args.checkpoint, device="cpu", faces_are_crops=True)

    def run(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probs = np.concatenate([p.classify(faces[i:i + 512]) for i in range(0, len(faces), 512)])
        return probs.argmax(1) == crowd, probs.max(1)

    box_of = lambda side: side / (1 + 2 * DEFAULT_MARGIN)  # noqa: E731 - crop side → detector box side
    sets: dict[str, dict] = {}
    correct, top = run(images)
    clean_acc = float(correct.mean())
    sets["clean"] = dict(correct=correct, top=top, sharp=sharpness(images), size=np.full(len(images), box_of(48)))
    for s in SHRINK:
        faces = np.stack([shrink(f, s) for f in images])
        c, t = run(faces)
        sets[f"shrink_{s}"] = dict(correct=c, top=t, sharp=sharpness(faces), size=np.full(len(faces), box_of(s)))
    for r in BLUR:
        faces = np.stack([blur(f, r) for f in images])
        c, t = run(faces)
        sets[f"blur_{r}"] = dict(correct=c, top=t, sharp=sharpness(faces), size=np.full(len(faces), box_of(48)))
    for d in ROTATE:
        faces = np.stack([rotate(f, d) for f in images])
        c, t = run(faces)
        sets[f"rotate_{d}"] = dict(correct=c, top=t, sharp=sharpness(faces), size=np.full(len(faces), box_of(48)),
                                   roll=np.full(len(faces), float(d)))
    print(f"classified {len(sets)} sets of {len(images)} faces in {time.perf_counter() - start:.0f} s", flush=True)

    # Size: one point per shrink level, and the clean faces.
    sizes = np.array([box_of(48)] + [box_of(s) for s in SHRINK])
    size_rel = np.array([1.0] + [sets[f"shrink_{s}"]["correct"].mean() / clean_acc for s in SHRINK])
    size_table = table(sizes, size_rel, np.ones(len(sizes)), increasing=True)
    # Sharpness: clean and blurred faces binned by their measured sharpness (deciles of the pool).
    sharp = np.concatenate([sets[k]["sharp"] for k in sets if k == "clean" or k.startswith("blur")])
    ok = np.concatenate([sets[k]["correct"] for k in sets if k == "clean" or k.startswith("blur")])
    edges = np.quantile(sharp, np.linspace(0, 1, 13))
    which = np.clip(np.searchsorted(edges, sharp, side="right") - 1, 0, 11)
    centres = np.array([np.median(sharp[which == b]) for b in range(12)])
    sharp_rel = np.array([ok[which == b].mean() / clean_acc for b in range(12)])
    sharp_table = table(centres, sharp_rel, np.array([(which == b).sum() for b in range(12)]), increasing=True)
    # Roll: one point per rotation.
    rolls = np.array([0.0] + ROTATE, float)
    roll_rel = np.array([1.0] + [sets[f"rotate_{d}"]["correct"].mean() / clean_acc for d in ROTATE])
    roll_table = table(rolls, roll_rel, np.ones(len(rolls)), increasing=False)
    # Yaw: the clean faces, re-detected at 3× on an edge-padded canvas, binned by |yaw|.
    yaw = np.full(len(images), np.nan)
    for i, face in enumerate(images):
        big = np.pad(np.asarray(Image.fromarray(face).resize((144, 144), Image.Resampling.BICUBIC)), 24, mode="edge")
        det = p.detector(Image.fromarray(big).convert("RGB"), min_face=MinFace(20.0))
        if len(det):
            k = int(det.scores.argmax())
            yaw[i] = abs(float(head_pose(det.landmarks[k:k + 1])[0][0]))
    found = ~np.isnan(yaw)
    ybin = np.digitize(yaw[found], YAW_BINS[1:-1])
    yc, yr, yn = [], [], []
    for b in range(len(YAW_BINS) - 1):
        m = ybin == b
        if m.sum() >= 30:  # fewer faces say nothing
            yc.append(float(np.median(yaw[found][m])))
            yr.append(float(sets["clean"]["correct"][found][m].mean() / clean_acc))
            yn.append(int(m.sum()))
    yaw_table = table(np.array(yc), np.array(yr), np.array(yn, float), increasing=False)
    print(f"yaw measured on {found.sum()} re-detected faces; {time.perf_counter() - start:.0f} s", flush=True)

    # The combined score on every copy (crops have no landmarks: size and sharpness, and roll for rotated).
    import emotion.inference.trust.quality as q

    q.SIZE_TABLE, q.SHARPNESS_TABLE = tuple(map(tuple, size_table)), tuple(map(tuple, sharp_table))
    q.ROLL_TABLE, q.YAW_TABLE = tuple(map(tuple, roll_table)), tuple(map(tuple, yaw_table))
    parts = lambda d: [np.array([q._table(q.SIZE_TABLE, v) for v in d["size"]]),  # noqa: E731
                       np.array([q._table(q.SHARPNESS_TABLE, v) for v in d["sharp"]]),
                       np.array([q._table(q.ROLL_TABLE, v) for v in d.get("roll", np.zeros(len(d["size"])))])]
    calibration = {}
    for name, combine in (("min", lambda ps: np.minimum.reduce(ps)), ("product", lambda ps: np.prod(ps, axis=0))):
        for d in sets.values():
            d[name] = combine(parts(d))
        pred = np.concatenate([d[name] for d in sets.values()])
        real = np.concatenate([d["correct"] for d in sets.values()]) / clean_acc
        bins = np.clip((pred * 10).astype(int), 0, 9)
        err = [(pred[bins == b].mean() - real[bins == b].mean()) ** 2 * (bins == b).mean() for b in range(10)
               if (bins == b).any()]
        calibration[name] = round(float(np.sqrt(np.sum(err))), 4)
    combine = min(calibration, key=calibration.get)
    for d in sets.values():
        d["quality"] = d[combine]

    pool_q = np.concatenate([d["quality"] for d in sets.values()])
    pool_ok = np.concatenate([d["correct"] for d in sets.values()])
    held = lambda mask: float(pool_ok[mask].mean()) if mask.any() else None  # noqa: E731
    min_quality = max([t for t in GRID if (pool_q < t).any() and held(pool_q < t) <= 0.5] or [0.0])
    clean_top, clean_ok = sets["clean"]["top"], sets["clean"]["correct"]
    abstain = max([t for t in GRID if (clean_top < t).any() and clean_ok[clean_top < t].mean() <= 0.5] or [0.0])

    def curve(d: dict, key: str) -> list[dict]:
        rows = []
        for t in GRID:
            kept = d[key] >= t
            rows.append({"threshold": t, "coverage": round(float(kept.mean()), 4),
                         "accuracy": None if not kept.any() else round(float(d["correct"][kept].mean()), 4)})
        return rows

    summary = {name: {"accuracy": round(float(d["correct"].mean()), 4),
                      "quality_mean": round(float(d["quality"].mean()), 4),
                      "sharpness_median": round(float(np.median(d["sharp"])), 3),
                      "held_back_at_default": round(float((d["quality"] < min_quality).mean()), 4)}
               for name, d in sets.items()}
    record = {
        "command": "python " + " ".join(sys.argv), "checkpoint": args.checkpoint,
        "protocol": "FER2013 PublicTest (val) faces whose FER+ plurality is one of the 7 classes; "
                    "answer: that plurality",
        "faces": int(len(images)), "clean_accuracy": round(clean_acc, 4), "sharpness_ref": round(sharpness_ref, 4),
        "tables": {"size": size_table, "sharpness": sharp_table, "yaw": yaw_table, "roll": roll_table},
        "yaw_faces": {"re_detected": int(found.sum()), "per_bin": yn},
        "combine": combine, "calibration_rmse": calibration,
        "defaults": {"min_quality": min_quality, "abstain": abstain,
                     "rule": "the largest threshold (steps of 0.05) whose held-back faces are right at most half "
                             "the time"},
        "sets": summary,
        "curves": {"quality_pooled": curve({"quality": pool_q, "correct": pool_ok}, "quality"),
                   "abstain_clean": curve(sets["clean"], "top"),
                   **{f"quality_{k}": curve(sets[k], "quality")
                      for k in ("shrink_16", "shrink_12", "blur_2.0", "rotate_30")}},
        "seconds": round(time.perf_counter() - start, 1),
    }
    write_json(args.out.with_suffix(".json"), record)
    args.out.with_suffix(".md").write_text(markdown(record))
    print(f"min_quality {min_quality}, abstain {abstain}, combine {combine} -> {args.out}.json")
    if args.write_constants:
        write_constants(record)


def markdown(r: dict) -> str:
    pct = lambda v: "—" if v is None else f"{100 * v:.1f} %"  # noqa: E731
    lines = [f"Face quality and abstention (written by `{r['command']}`; {r['protocol']}; {r['faces']} faces; "
             f"model `{r['checkpoint']}`). Clean accuracy {pct(r['clean_accuracy'])}.", "",
             "| set | accuracy | mean quality | median sharpness | held back at min_quality "
             f"{r['defaults']['min_quality']} |", "|---|---:|---:|---:|---:|"]
    for name, s in r["sets"].items():
        lines.append(f"| {name} | {pct(s['accuracy'])} | {s['quality_mean']:.3f} | {s['sharpness_median']:.3f} | "
                     f"{pct(s['held_back_at_default'])} |")
    lines += ["", f"Combined score: the {r['combine']} of the parts (calibration RMSE against relative accuracy: "
              + ", ".join(f"{k} {v}" for k, v in r["calibration_rmse"].items()) + ").", "",
              f"Defaults ({r['defaults']['rule']}): `min_quality` {r['defaults']['min_quality']}, "
              f"`abstain` {r['defaults']['abstain']}.", "", "Accuracy on the faces kept, against coverage:", "",
              "| threshold | " + " | ".join(r["curves"]) + " |", "|---:|" + "---:|" * len(r["curves"])]
    for i, t in enumerate(GRID):
        cells = [f"{pct(c[i]['accuracy'])} @ {pct(c[i]['coverage'])}" for c in r["curves"].values()]
        lines.append(f"| {t:.2f} | " + " | ".join(cells) + " |")
    lines += ["", "Tables (value → relative accuracy): " + "; ".join(
        f"{k}: " + ", ".join(f"{x:g}→{y:.3f}" for x, y in v) for k, v in r["tables"].items()), ""]
    return "\n".join(lines)


def write_constants(r: dict) -> None:
    path = ROOT / "emotion" / "inference" / "trust" / "quality.py"
    text = path.read_text()
    for name, key in (("SIZE_TABLE", "size"), ("SHARPNESS_TABLE", "sharpness"), ("YAW_TABLE", "yaw"),
                      ("ROLL_TABLE", "roll")):
        pairs = [f"({x!r}, {y!r})" for x, y in r["tables"][key]]
        value = "(\n" + "".join(f"    {', '.join(pairs[i:i + 6])},\n" for i in range(0, len(pairs), 6)) + ")"
        text = re.sub(rf"^{name}: (.*?) = \(.*?^\)$|^{name}: (.*?) = .*?$",
                      lambda m, name=name, value=value: f"{name}: {m.group(1) or m.group(2)} = {value}", text,
                      count=1, flags=re.M | re.S)
    text = re.sub(r"^SHARPNESS_REF = .*$", f"SHARPNESS_REF = {r['sharpness_ref']!r}", text, count=1, flags=re.M)
    text = re.sub(r"^MIN_QUALITY = .*$", f"MIN_QUALITY = {r['defaults']['min_quality']!r}", text, count=1, flags=re.M)
    text = re.sub(r"^ABSTAIN = .*$", f"ABSTAIN = {r['defaults']['abstain']!r}", text, count=1, flags=re.M)
    path.write_text(text)
    print(f"constants written to {path}")


if __name__ == "__main__":
    main()
