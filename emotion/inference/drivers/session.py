"""Predictions over many inputs into one output folder: every image and video frame's result, the
errors met on the way, the annotated files and, at the end, the results file (JSON or CSV). The
predict CLI is a thin loop over :class:`PredictSession`; the same steps serve any other driver."""

from __future__ import annotations

import signal
import sys
import threading
from collections import Counter
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from emotion.errors import EmotionError, unexpected_failure
from emotion.inference.drivers.inputs import Job
from emotion.inference.images import load_image
from emotion.inference.predictor import FaceEmotionPredictor
from emotion.inference.results import ImageResult
from emotion.inference.video import VideoOptions

__all__ = ["PredictSession", "FORMATS"]

FORMATS = ("json", "csv", "parquet")


def face_table(name: str, result: ImageResult) -> str:
    """A result as the CLI prints it: one line per face."""
    w, h = result.size
    if not result.faces:
        return f"{name}  {w}×{h}  no faces found"
    lines = [f"{name}  {w}×{h}  {len(result.faces)} face{'s' if len(result.faces) > 1 else ''}",
             f"  {'#':>2}  {'label':<9} {'prob':>5}  {'box x1,y1,x2,y2':<22} {'det':>4} {'quality':>7}"]
    for i, f in enumerate(result.faces, 1):
        box = ",".join(str(round(v)) for v in f.box)
        label = f"?{f.predicted}" if f.is_uncertain else f.label  # held back: its top class, marked
        quality = "" if f.quality is None else f"{f.quality.overall:>7.2f}"
        lines.append(f"  {i:>2}  {label:<9} {f.confidence:>5.0%}  {box:<22} {f.score:>4.2f} {quality}")
    return "\n".join(lines)


class PredictSession:
    """One output folder's worth of predictions.

    Args:
        predictor: what finds and classifies the faces.
        out: the output folder (made when something is written).
        annotate: write an annotated PNG per image.
        annotate_video: write an annotated copy of each video.
        video: how videos are analysed (:class:`~emotion.inference.video.VideoOptions`: frame step, detection
            step, smoothing, real time, the detection copy's size).
        show: show the annotated frames in a window (where there is a GUI).
        min_segment_s: a track's label change shorter than this does not split its segments.
        say: where per-input lines go (``say(text, err)``); the CLI passes tqdm's writer.
        progress: ``progress(total, desc)`` → a tqdm-like bar for a video's frames, or ``None``.
        explain: write each image face's saliency overlay, ``<name>_face<i>_explain.png``, and name it in
            the face's ``explanation`` (videos are not explained).
    """

    def __init__(self, predictor: FaceEmotionPredictor, out: str | Path, *, annotate: bool = True,
                 annotate_video: bool = False, video: VideoOptions | None = None, show: bool = False,
                 min_segment_s: float = 0.5, say: Callable[[str, bool], None] | None = None,
                 progress: Callable[..., Any] | None = None, explain: bool = False) -> None:
        self.predictor = predictor
        self.explain = explain
        self.out = Path(out)
        if self.out.exists() and not self.out.is_dir():
            raise EmotionError(f"--out '{self.out}' is a file; give a folder.")
        self.annotate, self.annotate_video, self.show = annotate, annotate_video, show
        self.video_options = video or VideoOptions()
        self.min_segment_s = min_segment_s
        self.say = say or (lambda text, err=False: print(text, file=sys.stderr if err else sys.stdout))
        self.progress = progress
        self.results: list[dict[str, Any]] = []
        self.errors: list[dict[str, str]] = []
        self.tracks: list[dict[str, Any]] = []  # per video track summaries, for predictions.json

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
        (:func:`~emotion.inference.drivers.bulk.iter_bulk_results`: ``workers`` decoding/detection
        processes, faces of many images in one classifier batch). ``done()`` is called per job."""
        from emotion.inference.drivers.bulk import iter_bulk_results

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

        if self.explain:
            result = self._explained(job, result)
        self.results.append(result.to_dict())
        if not quiet:
            self.say(face_table(str(job.path), result), False)
        if self.annotate:
            fig = self.predictor.annotate(rgb, result)
            with atomic_path(self.out / f"{job.name}.png") as tmp:
                fig.save(tmp, format="PNG", optimize=False)

    def _explained(self, job: Job, result: ImageResult) -> ImageResult:
        """``result`` with each face's overlay written and named (:meth:`FaceEmotionPredictor.explain_result`)."""
        from dataclasses import replace

        from emotion.inference.trust.explain import overlay
        from emotion.io import atomic_path

        faces = []
        for i, face in enumerate(self.predictor.explain_result(result).faces, 1):
            name = f"{job.name}_face{i}_explain.png"
            with atomic_path(self.out / name) as tmp:
                overlay(face.crop, face.saliency).save(tmp, format="PNG")
            faces.append(replace(face, explanation=name))
        return replace(result, faces=faces)

    def video(self, job: Job, quiet: bool = False) -> None:
        """Analyse one video or live source: its frames' rows, ``<name>_tracks.csv``,
        ``<name>_timeline.png`` and, if asked, ``<name>_annotated.mp4``. Frames analysed before a
        decoding error or a Ctrl-C are kept in those files (then the error, or the interrupt, is
        raised); a live source also streams its rows to ``<name>_frames.csv`` as they come."""
        from emotion.inference.outputs.timeline import plot_timeline
        from emotion.inference.outputs.video_sink import VideoWriter
        from emotion.inference.outputs.writers import write_tracks_csv
        from emotion.inference.video import iter_video_results, open_video
        from emotion.inference.video.summaries import TrackLog
        from emotion.io import atomic_path

        names = self.predictor.class_names
        log = TrackLog(names, path=str(job.path), min_segment_s=self.min_segment_s)
        stats: dict[str, int] = {}
        labels: Counter[str] = Counter()
        n = with_faces = 0
        stopped: BaseException | None = None
        every = self.video_options.every
        # Opened once (a stream is one connection); a missing or unreadable source fails here, before any file.
        cap, info = open_video(job.path)
        live = job.live or bool(self.video_options.realtime)
        with ExitStack() as stack:
            stack.callback(cap.release)  # the reader releases it too; this covers a failure before reading
            writer = bar = rows = None
            if self.progress is not None:
                total = -(-info.frames // every) if info.frames and not live else None
                bar = stack.enter_context(self.progress(total=total, desc=job.name))
            if self.annotate_video:
                tmp = stack.enter_context(atomic_path(self.out / f"{job.name}_annotated.mp4"))
                writer = stack.enter_context(VideoWriter(tmp, info.fps / every, (info.width, info.height)))
            if live:
                rows = stack.enter_context(_RowStream(self.out / f"{job.name}_frames.csv", names))
            window = _Window(job.name) if self.show else None
            try:
                for vf in iter_video_results(self.predictor, job.path, self.video_options, opened=(cap, info),
                                             log=log, stats=stats):
                    row = vf.result.to_dict()
                    with _ctrl_c_deferred():  # a frame's row lands in the results and the stream, or in neither
                        self.results.append(row)
                        if rows is not None:
                            rows.write(row)
                    labels.update(f.smoothed_label for f in vf.result.faces)
                    n, with_faces = n + 1, with_faces + bool(vf.result.faces)
                    if writer is not None:
                        writer.write(vf.bgr, vf.result)
                    if window is not None:
                        window.show(vf.bgr, vf.result)
                    if bar is not None:
                        bar.update()
            except (EmotionError, KeyboardInterrupt) as e:
                stopped = e  # what was read is kept: the files below are still completed
        if n:
            summaries = log.summaries()
            self.tracks += [s.to_dict() for s in summaries]
            write_tracks_csv(self.out / f"{job.name}_tracks.csv", summaries, names)
            plot_timeline(log, self.out / f"{job.name}_timeline.png", title=job.title or str(job.path),
                          duration_s=(info.frames / info.fps) if info.frames else None)
        if not quiet and n:
            counts = ", ".join(f"{k} {v}" for k, v in labels.most_common()) or "none"
            dropped = f", {stats.get('dropped', 0)} dropped (analysis behind the source)" if live else ""
            if job.live and stopped is None:
                dropped += "; the source closed"
            self.say(f"{job.path}  {info.width}×{info.height}  {n} frames analysed (every {every}{dropped}), "
                     f"faces in {with_faces}, {len(log)} tracks; smoothed labels: {counts}", False)
        if stopped is not None:
            raise stopped

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
        from emotion.inference.outputs.writers import results_document, write_csv, write_parquet
        from emotion.io import write_json

        if format in ("csv", "parquet"):
            writer = write_csv if format == "csv" else write_parquet
            path = writer(self.out / f"predictions.{format}", self.results, self.predictor.class_names)
            # Always written (an empty list on success) so a stale one never outlives its run.
            write_json(self.out / "errors.json", self.errors)
            return path
        path = self.out / "predictions.json"
        document = results_document(self.predictor.describe(), self.results, self.errors,
                                    **self.video_options.settings())
        write_json(path, {**document, "tracks": self.tracks})
        return path


@contextmanager
def _ctrl_c_deferred() -> Iterator[None]:
    """Hold a Ctrl-C that arrives inside the block until the block is done, then deliver it.
    Signal handlers belong to the main thread; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[Any] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught and callable(previous):
            previous(signal.SIGINT, caught[0])


class _RowStream:
    """A live source's rows appended to a CSV as they come, each frame's rows in one flushed write,
    so that a stream killed at any moment leaves a file of complete rows."""

    def __init__(self, path: Path, class_names: Sequence[str]) -> None:
        import csv
        import io

        from emotion.inference.outputs.table import face_table

        self._csv, self._io, self.class_names = csv, io, list(class_names)
        self.table = face_table(self.class_names)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(path, "w", newline="")
        self._write([self.table.names])

    def _write(self, rows: list[list[Any]]) -> None:
        buf = self._io.StringIO()
        self._csv.writer(buf).writerows(rows)
        self.fh.write(buf.getvalue())
        self.fh.flush()

    def write(self, result: dict[str, Any]) -> None:
        from emotion.inference.outputs.table import face_rows

        self._write(self.table.csv_rows(face_rows([result], self.class_names)))

    def __enter__(self) -> "_RowStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.fh.close()


class _Window:
    """The annotated frames in an OpenCV window, where OpenCV has a GUI; else one notice, and on."""

    def __init__(self, title: str) -> None:
        self.title, self.ok = title, True

    def show(self, bgr, result: ImageResult) -> None:
        if not self.ok:
            return
        import cv2

        from emotion.inference.outputs.annotate import draw_tracks_bgr

        try:
            cv2.imshow(self.title, draw_tracks_bgr(bgr.copy(), result))
            cv2.waitKey(1)
        except cv2.error:
            self.ok = False
            print("note: --show needs a GUI (this OpenCV build or machine has none); going on without a window.",
                  file=sys.stderr)
