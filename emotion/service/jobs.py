"""Video jobs: ``POST /predict/video`` queues one and answers its id at once; ``GET /jobs/{id}`` follows it.

A job is the CLI's own video analysis (:meth:`~emotion.inference.drivers.session.PredictSession.video` on the
upload, in a temporary folder): the same face tracks, smoothing, per-frame rows, track summaries and timeline
as ``python -m emotion.predict clip.mp4``, whose ``predictions.json`` a finished job returns. Jobs live in this
process's memory: **they survive neither a restart nor a Ctrl-C**, and finished ones are evicted, oldest first,
past ``keep_jobs`` or ``keep_s``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emotion.errors import EmotionError
from emotion.service.refusals import Refused

__all__ = ["VideoLimits", "VideoJob", "JobStore", "UPLOAD_NAME"]

#: The name the upload is analysed under (its rows' ``path``), whatever the client called it.
UPLOAD_NAME = "upload"


@dataclass(frozen=True)
class VideoLimits:
    """What the video endpoint accepts (each refusal a 4xx with one line).

    Attributes:
        max_mb: largest upload (413).
        max_s: longest video, from its header (413).
        max_frames: most frames, from its header (413).
        max_jobs: jobs queued or running at once; beyond, 429 with Retry-After.
        keep_jobs: finished jobs kept for ``GET /jobs/{id}``; the oldest beyond are evicted.
        keep_s: a finished job is evicted after this many seconds.
    """

    max_mb: float = 200.0
    max_s: float = 600.0
    max_frames: int = 36_000
    max_jobs: int = 2
    keep_jobs: int = 32
    keep_s: float = 3600.0


@dataclass
class VideoJob:
    """One uploaded video and where its analysis is."""

    id: str
    created: float
    frames_total: int | None = None
    state: str = "queued"  # queued → running → done | error
    frames_done: int = 0
    error: str | None = None
    document: dict[str, Any] | None = None  # predictions.json, when done
    timeline: bytes | None = None
    finished: float | None = None
    folder: Path | None = field(default=None, repr=False)

    def status(self) -> dict[str, Any]:
        """``GET /jobs/{id}``'s answer: progress, then (done) the ``predictions.json`` document's fields."""
        out: dict[str, Any] = {"id": self.id, "state": self.state, "frames_done": self.frames_done,
                               "frames_total": self.frames_total, "error": self.error}
        if self.document is not None:
            out.update(self.document)
        return out


def _image_format(data: bytes) -> str | None:
    """The image format of ``data`` read from its header (``JPEG``, ``PNG``, …), or ``None``."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.format or "image"
    except (UnidentifiedImageError, OSError, ValueError):
        return None


class _Progress:
    """The tqdm-like bar :class:`PredictSession` updates per analysed frame, counting into the job."""

    def __init__(self, job: VideoJob, total: int | None, stopping: threading.Event) -> None:
        self.job, self.stopping = job, stopping
        job.frames_total = total

    def __enter__(self) -> "_Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def update(self, n: int = 1) -> None:
        self.job.frames_done += n
        if self.stopping.is_set():  # the server is shutting down: end the job at this frame
            raise EmotionError("the server stopped before the video was analysed; send it again.")


class JobStore:
    """The jobs of one server, run ``max_jobs`` at a time on their own threads."""

    def __init__(self, predictor, limits: VideoLimits) -> None:
        self.predictor, self.limits = predictor, limits
        self.jobs: dict[str, VideoJob] = {}
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=limits.max_jobs, thread_name_prefix="video-job")
        self.evicted = 0
        self.stopping = threading.Event()

    def active(self) -> int:
        return sum(j.state in ("queued", "running") for j in self.jobs.values())

    def submit(self, data: bytes, options) -> VideoJob:
        """Check the upload against the limits and queue it; refuse (4xx) what cannot be a job."""
        from emotion.inference.video import probe_video

        if not data:
            raise Refused(400, "the request body is empty: send a video file, raw or as the multipart field 'file'.")
        kind = _image_format(data)
        if kind is not None:  # OpenCV would read it as a one-frame video
            raise Refused(400, f"the upload is an image ({kind}), not a video: send it to POST /predict.")
        with self.lock:
            self._evict()
            if self.active() >= self.limits.max_jobs:
                raise Refused(429, f"{self.limits.max_jobs} video jobs are already queued or running; retry when "
                                   "one has finished.", {"Retry-After": "5"})
            job = VideoJob(id=uuid.uuid4().hex, created=time.time())
            self.jobs[job.id] = job  # holds its place while it is checked
        try:
            job.folder = Path(tempfile.mkdtemp(prefix="emotion-job-"))
            path = job.folder / f"{UPLOAD_NAME}.video"
            path.write_bytes(data)
            try:
                info = probe_video(path)
            except EmotionError:
                raise Refused(400, "the upload is not a video this server can read (unknown codec, truncated or "
                                   "not a video); send an MP4, AVI, MKV or WebM file.") from None
            seconds = info.frames / info.fps if info.frames else 0.0
            if seconds > self.limits.max_s:
                raise Refused(413, f"the video lasts {seconds:.0f} s, above the {self.limits.max_s:g} s limit; "
                                   "send a shorter clip.")
            if info.frames > self.limits.max_frames:
                raise Refused(413, f"the video has {info.frames} frames, above the {self.limits.max_frames} limit; "
                                   "send a shorter clip or fewer frames a second.")
            job.frames_total = info.frames or None
        except BaseException:
            self._drop(job)
            raise
        self.pool.submit(self._run, job, path, options)
        return job

    def get(self, job_id: str) -> VideoJob:
        with self.lock:
            self._evict()
            job = self.jobs.get(job_id)
        if job is None:
            raise Refused(404, f"no job {job_id[:40]!r}: it never existed, or it finished more than "
                               f"{self.limits.keep_s:g} s or {self.limits.keep_jobs} jobs ago and was evicted (jobs "
                               "also do not survive a restart).")
        return job

    def _run(self, job: VideoJob, path: Path, options) -> None:
        from emotion.inference.drivers.inputs import Job
        from emotion.inference.drivers.session import PredictSession

        job.state = "running"
        try:
            session = PredictSession(self.predictor, job.folder / "out", annotate=False, video=options,
                                     say=lambda text, err: None,
                                     progress=lambda total, desc: _Progress(job, total, self.stopping))
            session.run(Job(path=path, kind="video", name=UPLOAD_NAME, title=UPLOAD_NAME), quiet=True)
            if not session.results:
                raise EmotionError(session.errors[0]["error"] if session.errors else "no frame could be read.")
            document = json.loads(session.write("json").read_text())
            for row in document["results"] + document["tracks"]:
                row["path"] = UPLOAD_NAME  # not the server's temporary file
            for error in document["errors"]:
                error["path"] = UPLOAD_NAME
            timeline = job.folder / "out" / f"{UPLOAD_NAME}_timeline.png"
            job.timeline = timeline.read_bytes() if timeline.is_file() else None
            job.document, job.state = document, "done"
        except EmotionError as e:
            job.error, job.state = str(e).replace(str(path), UPLOAD_NAME), "error"
        except Exception as e:  # noqa: BLE001 - one bad video must not take the server's jobs down
            job.error, job.state = f"the analysis failed ({type(e).__name__}: {str(e)[:200]}).", "error"
        finally:
            job.finished = time.time()
            shutil.rmtree(job.folder, ignore_errors=True)
            job.folder = None

    def _drop(self, job: VideoJob) -> None:
        with self.lock:
            self.jobs.pop(job.id, None)
        if job.folder is not None:
            shutil.rmtree(job.folder, ignore_errors=True)

    def _evict(self) -> None:
        """Finished jobs past ``keep_s``, then the oldest past ``keep_jobs`` (the caller holds the lock)."""
        now = time.time()
        done = sorted((j for j in self.jobs.values() if j.finished is not None), key=lambda j: j.finished)
        for i, j in enumerate(done):
            if now - j.finished > self.limits.keep_s or len(done) - i > self.limits.keep_jobs:
                del self.jobs[j.id]
                self.evicted += 1

    def stats(self) -> dict[str, int]:
        return {"active": self.active(), "kept": len(self.jobs), "evicted": self.evicted}

    def close(self) -> None:
        """Stop: queued jobs are dropped, running ones end at their next frame (jobs do not outlive the server)."""
        self.stopping.set()
        self.pool.shutdown(wait=True, cancel_futures=True)
