"""Predictions over many inputs into one output folder: every image and video frame's result, the
errors met on the way, the annotated files and, at the end, the results file (JSON or CSV). The
predict CLI is a thin loop over :class:`PredictSession`; the same steps serve any other driver."""

from __future__ import annotations

import sys
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable, Sequence

from emotion.errors import EmotionError, unexpected_failure
from emotion.inference.images import load_image
from emotion.inference.inputs import Job
from emotion.inference.predictor import FaceEmotionPredictor
from emotion.inference.results import ImageResult

__all__ = ["PredictSession", "FORMATS"]

FORMATS = ("json", "csv", "parquet")


def face_table(name: str, result: ImageResult) -> str:
    """A result as the CLI prints it: one line per face."""
    w, h = result.size
    if not result.faces:
        return f"{name}  {w}×{h}  no faces found"
    lines = [f"{name}  {w}×{h}  {len(result.faces)} face{'s' if len(result.faces) > 1 else ''}",
             f"  {'#':>2}  {'label':<9} {'prob':>5}  {'box x1,y1,x2,y2':<22} {'det':>4}"]
    for i, f in enumerate(result.faces, 1):
        box = ",".join(str(round(v)) for v in f.box)
        lines.append(f"  {i:>2}  {f.label:<9} {f.confidence:>5.0%}  {box:<22} {f.score:>4.2f}")
    return "\n".join(lines)


class PredictSession:
    """One output folder's worth of predictions.

    Args:
        predictor: what finds and classifies the faces.
        out: the output folder (made when something is written).
        annotate: write an annotated PNG per image.
        annotate_video: write an annotated copy of each video.
        every: analyse every ``every``-th video frame.
        say: where per-input lines go (``say(text, err)``); the CLI passes tqdm's writer.
        progress: ``progress(total, desc)`` → a tqdm-like bar for a video's frames, or ``None``.
    """

    def __init__(self, predictor: FaceEmotionPredictor, out: str | Path, *, annotate: bool = True,
                 annotate_video: bool = False, every: int = 1, say: Callable[[str, bool], None] | None = None,
                 progress: Callable[..., Any] | None = None) -> None:
        self.predictor = predictor
        self.out = Path(out)
        if self.out.exists() and not self.out.is_dir():
            raise EmotionError(f"--out '{self.out}' is a file; give a folder.")
        self.annotate, self.annotate_video, self.every = annotate, annotate_video, every
        self.say = say or (lambda text, err=False: print(text, file=sys.stderr if err else sys.stdout))
        self.progress = progress
        self.results: list[dict[str, Any]] = []
        self.errors: list[dict[str, str]] = []

    def run(self, job: Job, quiet: bool = False) -> None:
        """Predict one input; a failure is recorded and reported, never raised."""
        try:
            (self.image if job.kind == "image" else self.video)(job, quiet)
        except EmotionError as e:
            self.fail(str(job.path), str(e))
        except Exception as e:  # noqa: BLE001 - a bug met on one file must not cost the others their results
            self.fail(str(job.path), unexpected_failure(job.path, e))

    def fail(self, path: str, message: str) -> None:
        self.errors.append({"path": path, "error": message})
        self.say(f"error: {message}", True)

    def run_all(self, jobs: Sequence[Job], quiet: bool = False, workers: int = 2,
                done: Callable[[], None] | None = None) -> None:
        """Predict every job in order; each run of consecutive images goes through the bulk pipeline
        (:func:`~emotion.inference.bulk.iter_bulk_results`: ``workers`` decoding/detection
        processes, faces of many images in one classifier batch). ``done()`` is called per job."""
        from emotion.inference.bulk import iter_bulk_results

        done = done or (lambda: None)
        i = 0
        while i < len(jobs):
            if jobs[i].kind != "image":
                self.run(jobs[i], quiet)
                done()
                i += 1
                continue
            j = i
            while j < len(jobs) and jobs[j].kind == "image":
                j += 1
            # A lone image is not worth starting worker processes for.
            for item in iter_bulk_results(self.predictor, jobs[i:j], workers=workers if j - i > 1 else 0,
                                          keep_rgb=self.annotate):
                if item.error is not None:
                    self.fail(str(item.job.path), item.error)
                else:
                    self._keep(item.job, item.rgb, item.result, quiet)
                done()
            i = j

    def image(self, job: Job, quiet: bool = False) -> ImageResult:
        rgb, _ = load_image(job.path, max_pixels=self.predictor.max_pixels)  # decoded once, for both uses
        result = self.predictor.predict_rgb(rgb, path=str(job.path))
        self._keep(job, rgb, result, quiet)
        return result

    def _keep(self, job: Job, rgb, result: ImageResult, quiet: bool) -> None:
        """Record an image's result: in the results, on screen, as an annotated PNG."""
        from emotion.io import atomic_path

        self.results.append(result.to_dict())
        if not quiet:
            self.say(face_table(str(job.path), result), False)
        if self.annotate:
            fig = self.predictor.annotate(rgb, result)
            with atomic_path(self.out / f"{job.name}.png") as tmp:
                fig.save(tmp, format="PNG", optimize=False)

    def video(self, job: Job, quiet: bool = False) -> None:
        from emotion.inference.video import VideoWriter, iter_video_results
        from emotion.io import atomic_path

        labels: Counter[str] = Counter()
        n = with_faces = 0
        with ExitStack() as stack:
            writer = bar = None
            for info, frame, result in iter_video_results(self.predictor, job.path, self.every):
                if bar is None and self.progress is not None:
                    total = -(-info.frames // self.every) if info.frames else None
                    bar = stack.enter_context(self.progress(total=total, desc=job.path.name))
                if writer is None and self.annotate_video:
                    tmp = stack.enter_context(atomic_path(self.out / f"{job.name}_annotated.mp4"))
                    writer = stack.enter_context(VideoWriter(tmp, info.fps / self.every, (info.width, info.height)))
                self.results.append(result.to_dict())
                labels.update(f.label for f in result.faces)
                n, with_faces = n + 1, with_faces + bool(result.faces)
                if writer is not None and frame.size == writer.size:
                    writer.write(frame, result)
                if bar is not None:
                    bar.update()
        if not quiet:
            counts = ", ".join(f"{k} {v}" for k, v in labels.most_common()) or "none"
            self.say(f"{job.path}  {info.width}×{info.height}  {n} frames analysed (every {self.every}), "
                     f"faces in {with_faces}; labels: {counts}", False)

    def summary(self, jobs: Sequence[Job]) -> str:
        """``3 images, 1 video: 12 faces; 1 error``: what the session did with ``jobs``."""
        n_images = sum(j.kind == "image" for j in jobs)
        n_videos, n_faces, n_err = len(jobs) - n_images, sum(len(r["faces"]) for r in self.results), len(self.errors)
        text = (f"{n_images} image{'s' if n_images != 1 else ''}, {n_videos} video{'s' if n_videos != 1 else ''}: "
                f"{n_faces} face{'s' if n_faces != 1 else ''}")
        if n_faces == 0 and not n_err:
            text += " (no faces found)"
        return f"{text}; {n_err} error{'s' if n_err != 1 else ''}"

    def write(self, format: str = "json") -> Path:
        """The results file (``predictions.json``, or ``predictions.csv``/``.parquet`` with ``errors.json``),
        atomically."""
        from emotion.inference.writers import results_document, write_csv, write_parquet
        from emotion.io import write_json

        if format in ("csv", "parquet"):
            writer = write_csv if format == "csv" else write_parquet
            path = writer(self.out / f"predictions.{format}", self.results, self.predictor.class_names)
            # Always written (an empty list on success) so a stale one never outlives its run.
            write_json(self.out / "errors.json", self.errors)
            return path
        path = self.out / "predictions.json"
        write_json(path, results_document(self.predictor.describe(), self.results, self.errors, every=self.every))
        return path
