"""Video end to end: ours beside the `fer` package's ``Video.analyze``, on the same 1080p videos, in one run.

    make bench-video     # in .venv-peers (fer 25.10.3 + TensorFlow), beside ours
    python experiments/bench_video.py [--frames 100] [--checkpoint fast] [--photo PHOTO]

Two test videos are made here, both 1920×1080 at 25 fps, written as MPEG-4 (``mp4v``):

* ``pan``: a slow pan and zoom over ``group_of_six.jpg`` (``../shared/photos``; 6 faces of about
  150 px) or, without it, over the sample photo (``tests/assets``), so that every face moves;
* ``street``: :mod:`experiments.street_clip`, 3-7 small faces (40-120 px) walking in and out under a
  moving camera, a third of them turned, with ground truth: its rows add recall and ID switches
  against the truth (as :mod:`experiments.tracking_check` scores them).

Ours runs as ``python -m emotion.predict clip.mp4 --format csv`` does (a :class:`PredictSession`:
decoding, detection, tracks, classification, the rows, ``_tracks.csv`` and ``_timeline.png``),
with the model loaded beforehand, in these settings, each its own row, so that what each idea
buys shows:

* ``detect every frame, full-size search``: the photo pipeline's 1600-px detection on every frame;
* ``detect every frame``: the video default, detection on a 960-px copy (``VIDEO_DETECT_MAX_SIDE``);
* ``default: detect every 2, adaptive``: the video default (``VideoOptions.adaptive``): a detection at
  least every 2nd frame, and between whenever the tracks are unsettled; a carried face keeps its
  track's last probabilities;
* ``detect every 2 / 3 / 4``: detection on exactly every k-th frame, the tracks carried between;
* ``…, refined``: the same, each carried face found again by MTCNN's last stage (``--refine-tracks``);
* the same with ``--annotate-video`` (boxes, track ids and smoothed labels drawn with OpenCV and
  encoded in a background thread).

"faces lost" counts, per frame, the faces the every-frame run reported that the run does not (by
count), summed over frames. `fer` runs as its README shows, ``Video(path).analyze(FER(mtcnn=True),
display=False)``, with nothing saved; its ``cv2.waitKey`` calls are stubbed, since headless OpenCV
has no GUI (it calls them even with ``display=False``). The runs take turns in one process,
``--rounds`` times; each row is the median round.

Writes experiments/results/bench_video.json and .md; the README's video table is that file.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "experiments" / "results"
SHARED_PHOTO = ROOT.parent / "shared" / "photos" / "group_of_six.jpg"
SAMPLE_PHOTO = ROOT / "tests" / "assets" / "sample_faces.jpg"


def make_pan_video(photo: Path, path: Path, frames: int = 100, size: tuple[int, int] = (1920, 1080),
                   fps: float = 25.0) -> Path:
    """A slow pan and zoom (from 1.15× to 1.0 of the frame) over ``photo``, as an mp4v video."""
    import cv2
    import numpy as np
    from PIL import Image

    w, h = size
    img = Image.open(photo).convert("RGB")
    base = max(w / img.width, h / img.height) * 1.15
    big = np.asarray(img.resize((round(img.width * base), round(img.height * base)), Image.Resampling.BICUBIC))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for t in range(frames):
        a = t / max(frames - 1, 1)
        zoom = 1.15 - 0.15 * a  # the window grows: faces shrink a little and drift
        cw, ch = min(round(w * 1.15 / zoom), big.shape[1]), min(round(h * 1.15 / zoom), big.shape[0])
        x0 = round((big.shape[1] - cw) * a)
        y0 = round((big.shape[0] - ch) * (0.5 + 0.3 * np.sin(2 * np.pi * a)) / 1)
        y0 = min(max(y0, 0), big.shape[0] - ch)
        window = cv2.resize(big[y0:y0 + ch, x0:x0 + cw], size, interpolation=cv2.INTER_AREA)
        writer.write(cv2.cvtColor(window, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def run_ours(predictor, video: Path, out: Path, **options) -> dict:
    from emotion.inference.drivers.inputs import collect_inputs
    from emotion.inference.drivers.session import PredictSession

    jobs, _ = collect_inputs([str(video)])
    from emotion.inference.video import VideoOptions

    annotate_video = options.pop("annotate_video", False)
    session = PredictSession(predictor, out, say=lambda text, err=False: None, annotate_video=annotate_video,
                             video=VideoOptions(**options))
    start = time.perf_counter()
    session.run_all(jobs, quiet=True)
    session.write("csv")
    seconds = time.perf_counter() - start
    if session.errors:
        raise RuntimeError(session.errors)
    per_frame = [len(r["faces"]) for r in session.results]
    return {"seconds": round(seconds, 2), "frames": len(per_frame), "fps": round(len(per_frame) / seconds, 1),
            "faces": sum(per_frame), "per_frame": per_frame, "tracks": len(session.tracks), "rows": session.results}


def run_fer(video: Path, out: Path) -> dict:
    import cv2
    import facenet_pytorch  # noqa: F401  (before TensorFlow: the other order segfaults, see bench_peers.py)
    from fer.classes import Video
    from fer.fer import FER

    # Headless OpenCV has no GUI; fer calls these even with display=False.
    cv2.waitKey, cv2.destroyAllWindows = (lambda *a, **k: -1), (lambda *a, **k: None)
    detector = FER(mtcnn=True)
    start = time.perf_counter()
    v = Video(str(video), outdir=str(out))
    out.mkdir(parents=True, exist_ok=True)
    with contextlib.chdir(out):  # analyze also writes a data.csv into the working directory
        frames = v.analyze(detector, display=False, save_frames=False, save_video=False, annotate_frames=False,
                           zip_images=False)
    seconds = time.perf_counter() - start
    n = int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT))
    faces = sum(sum(k.startswith("box") for k in f) for f in frames)  # a row per frame, columns box0, box1, …
    return {"seconds": round(seconds, 2), "frames": n, "fps": round(n / seconds, 1), "faces": faces,
            "frames_with_faces": len(frames)}


def decode_fps(video: Path) -> float:
    import cv2

    cap = cv2.VideoCapture(str(video))
    n, start = 0, time.perf_counter()
    while cap.read()[0]:
        n += 1
    return round(n / (time.perf_counter() - start), 1)


def main() -> None:
    import torch

    from emotion.device import device_name
    from emotion.inference import FaceEmotionPredictor
    from emotion.inference.detection.detector import DETECT_MAX_SIDE
    from emotion.inference.video import DETECT_EVERY
    from emotion.io import write_results
    from experiments.street_clip import as_results, in_view, make_street_clip
    from experiments.tracking_check import score

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=100, help="the pan's length")
    ap.add_argument("--seconds", type=float, default=5.0, help="the street clip's length")
    ap.add_argument("--clip", choices=("pan", "street"), action="append", default=None,
                    help="repeat for both (default: both)")
    ap.add_argument("--photo", type=Path, default=SHARED_PHOTO if SHARED_PHOTO.is_file() else SAMPLE_PHOTO)
    ap.add_argument("--checkpoint", action="append", default=None,
                    help="our classifier; repeat for more (default: the bundled default and fast models)")
    ap.add_argument("--no-fer", action="store_true", help="ours only (outside .venv-peers)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="runs of each setting; the median is reported")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from emotion.checkpoint import BUNDLED_MODELS

    clips = args.clip or ["pan", "street"]
    names = args.checkpoint or [n for n, p in BUNDLED_MODELS.items() if p.is_dir() and n != "fer2013"]
    predictors = {n: FaceEmotionPredictor.from_checkpoint(n, device="cpu") for n in names}
    rows = []
    settings: dict[str, dict] = {
        "detect every frame, full-size search": dict(detect_every=1, max_side=DETECT_MAX_SIDE),
        "detect every frame": dict(detect_every=1),
        "default: detect every 2, adaptive": dict(detect_every=DETECT_EVERY, adaptive=True),
        "detect every 2": dict(detect_every=2, adaptive=False),
        "detect every 3": dict(detect_every=3, adaptive=False),
        "detect every 4": dict(detect_every=4, adaptive=False),
        "detect every 3, refined": dict(detect_every=3, refine=True, adaptive=False),
        "detect every 4, refined": dict(detect_every=4, refine=True, adaptive=False),
        "detect every frame + annotated video": dict(detect_every=1, annotate_video=True),
        "default: detect every 2, adaptive + annotated video": dict(detect_every=DETECT_EVERY, adaptive=True,
                                                                    annotate_video=True),
    }
    described, decode = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for clip in clips:
            truth = None
            if clip == "pan":
                video = make_pan_video(args.photo, tmp / "pan_1080p.mp4", args.frames)
                described[clip] = f"a {args.frames}-frame pan over `{args.photo.name}`"
            else:
                video, truth = tmp / "street_1080p.mp4", make_street_clip(tmp / "street_1080p.mp4", args.seconds)
                lo, hi = in_view(truth)
                described[clip] = (f"a {len(truth.truth)}-frame street clip (`experiments/street_clip.py`: {lo}-{hi} "
                                   "faces of 40-120 px in view, walking in and out, a moving camera)")
            for predictor in predictors.values():
                run_ours(predictor, video, tmp / "warm", detect_every=1)  # warm-up: first-call costs out of the rows
            timed: dict[tuple[str, str], list[dict]] = {}
            for _ in range(args.rounds):  # rounds of every setting in turn: each sees the same machine load
                for model, predictor in predictors.items():
                    for name, opts in settings.items():
                        out = tmp / f"{clip}_{model}_{name.replace(' ', '_')}"
                        timed.setdefault((model, name), []).append(run_ours(predictor, video, out, **opts))
            runs = {key: sorted(tries, key=lambda r: r["seconds"])[len(tries) // 2] for key, tries in timed.items()}
            fer = None if args.no_fer else run_fer(video, tmp / f"fer_{clip}")
            decode[clip] = decode_fps(video)
            for (model, name), r in runs.items():
                base = runs[model, "detect every frame"]
                lost = sum(max(0, a - b) for a, b in zip(base["per_frame"], r["per_frame"]))
                plain = runs.get((model, name.replace(" + annotated video", "")))
                arch = predictors[model].model.hparams.get("arch")
                vs_truth = score(truth, as_results(r["rows"])) if truth else {}
                rows.append({"clip": clip, "run": f"ours ({model}: {arch}): {name}", "fps": r["fps"],
                             "seconds": r["seconds"], "frames": r["frames"], "faces": r["faces"],
                             "faces_lost_vs_every_frame": lost, "tracks": r["tracks"],
                             "recall": vs_truth.get("recall"), "id_switches": vs_truth.get("id_switches"),
                             "annotate_cost": (round(r["seconds"] / plain["seconds"], 2)
                                               if "annotated" in name else None),
                             "vs_fer": round(fer["seconds"] / r["seconds"], 2) if fer else None})
            if fer:
                rows.append({"clip": clip, "run": "fer 25.10.3: Video.analyze(FER(mtcnn=True))", "fps": fer["fps"],
                             "seconds": fer["seconds"], "frames": fer["frames"], "faces": fer["faces"],
                             "faces_lost_vs_every_frame": None, "tracks": None, "recall": None, "id_switches": None,
                             "annotate_cost": None, "vs_fer": 1.0})
    device = device_name("cpu")
    md = [f"Video end to end (`experiments/bench_video.py`), 1920×1080 at 25 fps, {device}, torch threads "
          f"{args.threads}; each row the median of {args.rounds} rounds. \"faces lost\" is against the same "
          "model's every-frame run; recall and ID switches are against the street clip's ground truth (IoU ≥ 0.3, "
          "faces at least 60 % in view)."]
    for clip in clips:
        md += ["", f"**{clip}**: {described[clip]}; the OpenCV decode alone runs at {decode[clip]} frames/s.", "",
               "| run | frames/s | seconds | faces | faces lost vs every frame | recall | ID switches | tracks | "
               "annotated / plain | speed vs fer |", "|---|" + "---:|" * 9]
        for r in (r for r in rows if r["clip"] == clip):
            cells = [r["run"], r["fps"], r["seconds"], r["faces"], r["faces_lost_vs_every_frame"],
                     None if r["recall"] is None else f"{r['recall']:.1%}", r["id_switches"], r["tracks"],
                     f"{r['annotate_cost']}×" if r["annotate_cost"] else None,
                     f"{r['vs_fer']}×" if r["vs_fer"] else None]
            md.append("| " + " | ".join("–" if c is None else str(c) for c in cells) + " |")
    text = "\n".join(md) + "\n"
    print(text)
    write_results(RESULTS / "bench_video.json", {"device": device, "threads": args.threads, "photo": args.photo.name,
                                                 "frames": args.frames, "seconds": args.seconds, "decode_fps": decode,
                                                 "rows": rows}, text)


if __name__ == "__main__":
    main()
