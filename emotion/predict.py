"""Find every face in photos, folders and videos and name its expression.

    python -m emotion.predict photo.jpg holidays/ clip.mp4 --out predictions/ [--checkpoint CKPT]

Per image a table and an annotated PNG in ``--out``; per video every N-th frame. Results go to
``predictions.json`` (``.csv``/``.parquet``: a row per face, with ``errors.json``), atomically. An
unreadable file is one line, the others are still processed; exit 1 then (2 usage errors, 130
interrupted, else 0). The work is :class:`~emotion.inference.drivers.session.PredictSession`'s (or Ray's).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from emotion.cliargs import min_face, trust_arguments, video_arguments
from emotion.errors import EmotionError, quiet_library_warnings
from emotion.inference import MTCNN_MIN_FACE, RUNTIMES, FaceEmotionPredictor
from emotion.inference.drivers.inputs import collect_inputs
from emotion.inference.drivers.session import FORMATS, PredictSession
from emotion.inference.video import VideoOptions
from emotion.models.tta import TTA_MODES

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m emotion.predict", description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 ok (also when no face is found), 1 some inputs failed, 2 usage error.")
    ap.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders (searched recursively), videos")
    ap.add_argument("--checkpoint", default=None, metavar="CKPT",
                    help="a .ckpt, an exported model folder, or a bundled model: default (what people would say), "
                         "fast (the same for video and bulk work) or fer2013 (FER2013's own labels) "
                         "(default: default)")
    ap.add_argument("--out", default="predictions", metavar="DIR", help="output folder (default: %(default)s)")
    ap.add_argument("--format", choices=FORMATS, default=None,
                    help="results file format (default: json; parquet with --engine ray, which writes nothing else)")
    ap.add_argument("--min-face", type=min_face, default=None, metavar="PX",
                    help="smallest face searched for, in px (default: auto, 1/12 of the photo's shorter side "
                         f"in MTCNN's steps of 20, 28, 40, 56 px; {MTCNN_MIN_FACE} searches all that MTCNN can find)")
    ap.add_argument("--device", choices=("cpu", "cuda", "mps"), default=None, help="default: the best available")
    ap.add_argument("--workers", type=int, default=2, metavar="N",
                    help="processes that decode and detect while the classifier runs (0: none; default: %(default)s)")
    ap.add_argument("--engine", choices=("local", "ray"), default="local",
                    help="ray: the same pipeline as a Ray Data job, rows to DIR/predictions.parquet/ (emotion[ray])")
    ap.add_argument("--address", default=None, help="with --engine ray: a Ray cluster to join (default: a local one)")
    video_arguments(ap)
    ap.add_argument("--show", action="store_true", help="show annotated video frames in a window (needs a GUI)")
    ap.add_argument("--tta", nargs="?", const="flip", default="none", choices=TTA_MODES,
                    help="test-time augmentation: flip (each face with its mirror image; what --tta alone "
                         "means) or tencrop")
    trust_arguments(ap)
    ap.add_argument("--no-align", action="store_true", help="do not rotate faces to level the eyes")
    ap.add_argument("--runtime", choices=RUNTIMES, default="torch",
                    help="run the classifier with torch or ONNX Runtime (CPU; default: %(default)s)")
    ap.add_argument("--faces-are-crops", action="store_true",
                    help="each image is one already-cropped face (e.g. FER2013's own): skip detection")
    ap.add_argument("--annotate-video", action="store_true", help="write an annotated copy of each video")
    ap.add_argument("--no-annotate", action="store_true", help="do not write annotated PNGs of images")
    ap.add_argument("-q", "--quiet", action="store_true", help="no per-image tables")
    return ap


def _options(args: argparse.Namespace) -> dict:  # the predictor's settings, for either engine
    return dict(align=not args.no_align, tta=args.tta, min_face=args.min_face, faces_are_crops=args.faces_are_crops,
                min_quality=args.min_quality, abstain=args.abstain)


def _predictor(args: argparse.Namespace) -> FaceEmotionPredictor:
    if args.runtime == "onnx" and args.device not in (None, "cpu"):
        raise EmotionError(f"--runtime onnx runs on the CPU; drop --device {args.device} or use --runtime torch.")
    if args.device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise EmotionError("--device cuda, but no CUDA GPU is available; use --device cpu.")
    return FaceEmotionPredictor.from_checkpoint(args.checkpoint, device=args.device, runtime=args.runtime,
                                                **_options(args))


def _run_ray(args: argparse.Namespace) -> int:
    from emotion.inference.drivers.ray_engine import run_ray, summarize

    out = run_ray(args.paths, Path(args.out) / "predictions.parquet", checkpoint=args.checkpoint,
                  address=args.address, workers=max(1, args.workers), options=_options(args))
    images, faces, errors = summarize(out)
    for message in errors:
        print(f"error: {message}", file=sys.stderr)
    print(f"{images} images: {faces} faces; {len(errors)} errors -> {out}")
    return 1 if errors else 0


def _run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    if args.engine == "ray":
        if args.format not in (None, "parquet"):
            raise EmotionError(f"--engine ray writes Parquet only (DIR/predictions.parquet/): drop --format "
                               f"{args.format}, or use --engine local for {args.format}.")
        if args.explain:
            raise EmotionError("--explain writes a PNG per face, which --engine ray does not: use --engine local.")
        return _run_ray(args)
    jobs, missing = collect_inputs(args.paths, exclude=Path(args.out))
    for _, message in missing:
        print(f"error: {message}", file=sys.stderr)
    if not jobs:
        return 1 if missing else 2
    session = PredictSession(
        _predictor(args), args.out, annotate=not args.no_annotate, annotate_video=args.annotate_video,
        video=VideoOptions(every=args.every, detect_every=args.detect_every, smooth_s=args.smooth,
                           realtime=True if args.live else None, refine=args.refine_tracks,
                           adaptive=args.adaptive), show=args.show,
        say=lambda text, err: tqdm.write(text, file=sys.stderr if err else sys.stdout),
        progress=lambda total, desc: tqdm(total=total, desc=desc, unit="frame", leave=False, disable=None),
        explain=args.explain)
    session.errors += [{"path": path, "error": message} for path, message in missing]
    interrupted = False
    with tqdm(total=len(jobs), desc="images", unit="file", disable=None if len(jobs) > 1 else True) as bar:
        try:
            session.run_all(jobs, quiet=args.quiet, workers=args.workers, done=bar.update)
        except KeyboardInterrupt:
            interrupted = True  # keep what was done: the results file is still written below
    path = session.write(args.format or "json")
    print(f"{session.summary(jobs)} -> {path}")
    if interrupted:
        print("interrupted: partial results written", file=sys.stderr)
        return 130
    return 1 if session.errors else 0


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    quiet_library_warnings()
    try:
        return _run(args)
    except EmotionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
