"""Find every face in photos, folders and videos and name its expression.

::

    python -m emotion.predict photo.jpg holidays/ clip.mp4 --out predictions/ [--checkpoint CKPT]

For each image: a table on stdout and an annotated PNG in ``--out``; for each video: every N-th
frame analysed (and ``--annotate-video`` writes an annotated copy). All results go to
``predictions.json`` (or ``predictions.csv``, one row per face, with ``errors.json``). Every file is
written atomically. A file that cannot be read is reported on one line and the others are still
processed; the exit status is then 1 (2 for usage errors, 130 when interrupted, 0 otherwise;
finding no face is not an error).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from emotion.errors import EmotionError, first_line
from emotion.inference import MTCNN_MIN_FACE, RUNTIMES, FaceEmotionPredictor, load_image
from emotion.inference.inputs import Job, collect_inputs
from emotion.models.tta import TTA_MODES

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m emotion.predict", description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 ok (also when no face is found), 1 some inputs failed, 2 usage error.")
    ap.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders (searched recursively), videos")
    ap.add_argument("--checkpoint", default=None, metavar="CKPT",
                    help="a .ckpt or an exported model folder (default: the bundled model)")
    ap.add_argument("--out", default="predictions", metavar="DIR", help="output folder (default: %(default)s)")
    ap.add_argument("--format", choices=("json", "csv"), default="json", help="results file format")
    ap.add_argument("--min-face", type=_min_face, default=None, metavar="PX",
                    help="smallest face searched for, in px (default: auto, 1/12 of the photo's shorter side "
                         f"in MTCNN's steps of 20, 28, 40, 56 px; {MTCNN_MIN_FACE} searches all that MTCNN can find)")
    ap.add_argument("--device", choices=("cpu", "cuda", "mps"), default=None, help="default: the best available")
    ap.add_argument("--every", type=_positive_int, default=1, metavar="N", help="analyse every N-th video frame")
    ap.add_argument("--tta", nargs="?", const="flip", default="none", choices=TTA_MODES,
                    help="test-time augmentation: flip (each face with its mirror image; what --tta alone "
                         "means) or tencrop")
    ap.add_argument("--no-align", action="store_true", help="do not rotate faces to level the eyes")
    ap.add_argument("--runtime", choices=RUNTIMES, default="torch",
                    help="run the classifier with torch or ONNX Runtime (CPU; default: %(default)s)")
    ap.add_argument("--faces-are-crops", action="store_true",
                    help="each image is one already-cropped face (e.g. FER2013's own): skip detection")
    ap.add_argument("--annotate-video", action="store_true", help="write an annotated copy of each video")
    ap.add_argument("--no-annotate", action="store_true", help="do not write annotated PNGs of images")
    ap.add_argument("-q", "--quiet", action="store_true", help="no per-image tables")
    return ap


def _min_face(s: str) -> int | None:
    if s == "auto":
        return None
    try:
        return _positive_int(s)
    except argparse.ArgumentTypeError as e:
        raise argparse.ArgumentTypeError(f"{e}; give px or 'auto'") from None


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _face_table(name: str, result) -> str:
    w, h = result.size
    if not result.faces:
        return f"{name}  {w}×{h}  no faces found"
    lines = [f"{name}  {w}×{h}  {len(result.faces)} face{'s' if len(result.faces) > 1 else ''}",
             f"  {'#':>2}  {'label':<9} {'prob':>5}  {'box x1,y1,x2,y2':<22} {'det':>4}"]
    for i, f in enumerate(result.faces, 1):
        box = ",".join(str(round(v)) for v in f.box)
        lines.append(f"  {i:>2}  {f.label:<9} {f.confidence:>5.0%}  {box:<22} {f.score:>4.2f}")
    return "\n".join(lines)


class _Session:
    """State of one CLI run: the predictor, the output folder, results and errors so far."""

    def __init__(self, args: argparse.Namespace) -> None:
        from tqdm import tqdm

        self.args = args
        self.tqdm = tqdm
        self.out = Path(args.out)
        if self.out.exists() and not self.out.is_dir():
            raise EmotionError(f"--out '{self.out}' is a file; give a folder.")
        device = args.device
        if args.runtime == "onnx" and device not in (None, "cpu"):
            raise EmotionError(f"--runtime onnx runs on the CPU; drop --device {device} or use --runtime torch.")
        if device == "cuda":
            import torch
            if not torch.cuda.is_available():
                raise EmotionError("--device cuda, but no CUDA GPU is available; use --device cpu.")
        self.predictor = FaceEmotionPredictor.from_checkpoint(
            args.checkpoint, device=device, align=not args.no_align, tta=args.tta, min_face=args.min_face,
            faces_are_crops=args.faces_are_crops, runtime=args.runtime)
        self.results: list[dict[str, Any]] = []
        self.errors: list[dict[str, str]] = []

    def say(self, text: str, err: bool = False) -> None:
        # tqdm.write keeps progress bars intact.
        self.tqdm.write(text, file=sys.stderr if err else sys.stdout)

    def fail(self, path: str, message: str) -> None:
        self.errors.append({"path": path, "error": message})
        self.say(f"error: {message}", err=True)

    def image(self, job: Job) -> None:
        from emotion.io import atomic_path

        rgb, _ = load_image(job.path, max_pixels=self.predictor.max_pixels)  # decoded once, for both uses
        result = self.predictor.predict_rgb(rgb, path=str(job.path))
        self.results.append(result.to_dict())
        if not self.args.quiet:
            self.say(_face_table(str(job.path), result))
        if not self.args.no_annotate:
            fig = self.predictor.annotate(rgb, result)
            with atomic_path(self.out / f"{job.name}.png") as tmp:
                fig.save(tmp, format="PNG", optimize=False)

    def video(self, job: Job) -> None:
        from collections import Counter
        from contextlib import ExitStack

        from emotion.inference.video import VideoWriter, iter_video_results
        from emotion.io import atomic_path

        every = self.args.every
        labels: Counter[str] = Counter()
        n = with_faces = 0
        with ExitStack() as stack:
            writer = bar = None
            for info, frame, result in iter_video_results(self.predictor, job.path, every):
                if bar is None:
                    bar = stack.enter_context(self.tqdm(total=-(-info.frames // every) if info.frames else None,
                                                        desc=job.path.name, unit="frame", leave=False, disable=None))
                if writer is None and self.args.annotate_video:
                    tmp = stack.enter_context(atomic_path(self.out / f"{job.name}_annotated.mp4"))
                    writer = stack.enter_context(VideoWriter(tmp, info.fps / every, (info.width, info.height)))
                self.results.append(result.to_dict())
                labels.update(f.label for f in result.faces)
                n, with_faces = n + 1, with_faces + bool(result.faces)
                if writer is not None and frame.size == writer.size:
                    writer.write(frame, result)
                bar.update()
        if not self.args.quiet:
            counts = ", ".join(f"{k} {v}" for k, v in labels.most_common()) or "none"
            self.say(f"{job.path}  {info.width}×{info.height}  {n} frames analysed (every {every}), "
                     f"faces in {with_faces}; labels: {counts}")

    def write_results(self) -> Path:
        from emotion.inference.writers import results_document, write_csv
        from emotion.io import write_json

        if self.args.format == "csv":
            path = write_csv(self.out / "predictions.csv", self.results, self.predictor.class_names)
            # Always written (an empty list on success) so a stale one never outlives its run.
            write_json(self.out / "errors.json", self.errors)
            return path
        path = self.out / "predictions.json"
        write_json(path, results_document(self.predictor.describe(), self.results, self.errors, every=self.args.every))
        return path


def _run(args: argparse.Namespace) -> int:
    jobs, missing = collect_inputs(args.paths, exclude=Path(args.out))
    for _, message in missing:
        print(f"error: {message}", file=sys.stderr)
    if not jobs:
        return 1 if missing else 2
    run = _Session(args)
    for path, message in missing:
        run.errors.append({"path": path, "error": message})
    n_images = sum(j.kind == "image" for j in jobs)
    bar = run.tqdm(jobs, desc="images", unit="file", disable=None if len(jobs) > 1 else True)
    interrupted = False
    try:
        for job in bar:
            try:
                (run.image if job.kind == "image" else run.video)(job)
            except EmotionError as e:
                run.fail(str(job.path), str(e))
            except Exception as e:  # noqa: BLE001 - a bug met on one file must not cost the others their results
                run.fail(str(job.path), f"'{job.path}' failed with {type(e).__name__}: {first_line(e)} "
                                        "(a bug in emotion; please report it with this file).")
    except KeyboardInterrupt:
        interrupted = True  # keep what was done: the results file is still written below
    finally:
        bar.close()
    path = run.write_results()
    n_faces = sum(len(r["faces"]) for r in run.results)
    n_err = len(run.errors)
    summary = (f"{n_images} image{'s' if n_images != 1 else ''}, {len(jobs) - n_images} video"
               f"{'s' if len(jobs) - n_images != 1 else ''}: {n_faces} face{'s' if n_faces != 1 else ''}")
    if n_faces == 0 and not n_err:
        summary += " (no faces found)"
    print(f"{summary}; {n_err} error{'s' if n_err != 1 else ''} -> {path}")
    if interrupted:
        print("interrupted: partial results written", file=sys.stderr)
        return 130
    return 1 if run.errors else 0


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    from emotion.errors import quiet_library_warnings

    quiet_library_warnings()
    try:
        return _run(args)
    except EmotionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
