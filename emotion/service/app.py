"""The HTTP app: ``POST /predict`` (an image in, the faces' JSON out), ``POST /predict/video`` and
``GET /jobs/{id}`` (a video in, a job that ends in its ``predictions.json``), ``GET /health``, the web page
at ``/`` and an offline API page at ``/docs``.

Every refusal is a 4xx JSON ``{"error": "…"}`` naming what was wrong and what to do; the server
keeps serving. Nothing a client sends is ever used as a path: uploads are decoded from memory and
their type is read from their bytes.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import io
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass, replace
from email import policy
from email.parser import BytesParser
from importlib.resources import files
from typing import Annotated, Any, Iterator, Literal

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image
from starlette.exceptions import HTTPException as StarletteHTTPException

from emotion.errors import EmotionError, TooLarge
from emotion.inference import MTCNN_MIN_FACE, SCHEMA_VERSION, FaceEmotionPredictor, load_image
from emotion.inference.detection import MAX_MIN_FACE, MinFace
from emotion.inference.trust.explain import overlay
from emotion.inference.video import DETECT_EVERY, VideoOptions
from emotion.service.batcher import FaceBatcher
from emotion.service.jobs import JobStore, VideoLimits
from emotion.service.refusals import Refused

__all__ = ["Limits", "create_app", "UPLOAD_FIELDS"]

log = logging.getLogger("emotion.serve")

#: Multipart field names taken as the image (the page sends ``file``).
UPLOAD_FIELDS = ("file", "image")


@dataclass(frozen=True)
class Limits:
    """What one server accepts.

    Attributes:
        max_body_mb: largest request body; a larger one is refused (413) before it is read whole.
        max_pixels: largest image (width × height), checked from its header before decoding (413).
        max_pending: requests admitted at once (queued or in progress); beyond: 503 + Retry-After.
        timeout_s: a request not answered within this gets 504.
        api_key: when set, every request but ``/health`` needs it (``X-API-Key`` or ``Authorization: Bearer``).
        max_batch: most faces per classifier batch.
        batch_wait_ms: how long a batch waits for faces of other requests.
        batching: classify the faces of concurrent requests together (off: one request at a time).
        threads: decoding/detection threads.
        video: what ``POST /predict/video`` accepts (:class:`~emotion.service.jobs.VideoLimits`).
    """

    max_body_mb: float = 10.0
    max_pixels: int = 40_000_000
    max_pending: int = 64
    timeout_s: float = 30.0
    api_key: str | None = None
    max_batch: int = 256
    batch_wait_ms: float = 5.0
    batching: bool = True
    threads: int = 2
    video: VideoLimits = VideoLimits()


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


#: The query options of ``POST /predict``; any other is refused (a typo would otherwise pass silently).
QUERY_OPTIONS = ("min_face", "tta", "faces_are_crops", "crops", "min_quality", "abstain", "explain")


def predict_options(
    request: Request,
    min_face: str | None = Query(None, description=f"smallest face searched for: px ({MTCNN_MIN_FACE} to "
                                                   f"{MAX_MIN_FACE}) or auto (default: the server's own)"),
    tta: Literal["none", "flip", "tencrop"] | None = Query(None, description="test-time augmentation "
                                                                             "(default: the server's)"),
    faces_are_crops: bool | None = Query(None, description="the image is one face, cropped: skip detection"),
    crops: bool = Query(False, description="also return each face's 48×48 crop as a base64 PNG"),
    min_quality: float | None = Query(None, ge=0, le=1, description="label a face 'uncertain' when its quality "
                                                                   "is below this (default: the server's)"),
    abstain: float | None = Query(None, ge=0, le=1, description="label a face 'uncertain' when its top "
                                                               "probability is below this (default: the server's)"),
    explain: bool = Query(False, description="also return each face's saliency overlay as a base64 PNG"),
) -> dict[str, Any]:
    """The query options, typed (so ``/openapi.json`` lists them) and checked."""
    unknown = sorted(set(request.query_params) - set(QUERY_OPTIONS))
    if unknown:
        raise Refused(400, f"unknown query option {unknown[0]!r}; use {', '.join(QUERY_OPTIONS)}.")
    try:  # absent: the server's own (None)
        parsed = None if min_face is None else MinFace.parse(min_face)
    except ValueError as e:
        raise Refused(400, f"min_face={min_face!r}: {e}.") from None
    return {"min_face": parsed, "tta": tta, "faces_are_crops": faces_are_crops, "crops": crops,
            "min_quality": min_quality, "abstain": abstain, "explain": explain}


async def _read_body(request: Request, limit: int, what: str = "image") -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` bytes: from
    Content-Length before reading, else while streaming (a chunked upload)."""
    too_big = Refused(413, f"the request body is larger than the {limit / 1e6:g} MB limit; send a smaller {what}.")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def _image_bytes(content_type: str, body: bytes, what: str = "image") -> bytes:
    """The ``what`` (image or video) in a raw body, or in a multipart form's ``file`` (or ``image``) field."""
    if not body:
        raise Refused(400, f"the request body is empty: send {'an' if what == 'image' else 'a'} {what} file, raw "
                           "or as the multipart field 'file'.")
    if not content_type.lower().startswith("multipart/form-data"):
        return body
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    if not message.is_multipart():
        raise Refused(400, "the multipart body cannot be parsed (no boundary or no parts).")
    names = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        names.append(name)
        if name in UPLOAD_FIELDS:
            return part.get_payload(decode=True) or b""
    raise Refused(400, f"the form has no field 'file' (found: {', '.join(map(repr, names)) or 'none'}); "
                       f"send the {what} as the multipart field 'file'.")


def _png_b64(face: np.ndarray | Image.Image) -> str:
    buf = io.BytesIO()
    (face if isinstance(face, Image.Image) else Image.fromarray(face, "L")).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


@dataclass
class _Slot:
    """An admitted request; ``work`` is what holds its slot past the answer (see :meth:`_Service.admitted`)."""

    work: asyncio.Future | None = None


class _Service:
    """The predictor, its batcher and thread pool, and the admission count."""

    def __init__(self, predictor: FaceEmotionPredictor, limits: Limits) -> None:
        self.predictor = predictor
        self.limits = limits
        self.batcher = FaceBatcher(predictor.classify_many, max_batch=limits.max_batch,
                                   max_wait_ms=limits.batch_wait_ms, enabled=limits.batching,
                                   in_flight=lambda: self.pending)
        self.pool = ThreadPoolExecutor(max_workers=limits.threads, thread_name_prefix="decode-detect")
        self.jobs = JobStore(predictor, limits.video)
        self.pending = 0
        self.served = 0
        self.refused: dict[int, int] = {}

    def find_faces(self, data: bytes, opts: dict[str, Any]):
        rgb, _ = load_image(data, max_pixels=self.limits.max_pixels)
        det, faces = self.predictor.find_faces(rgb, min_face=opts["min_face"], faces_are_crops=opts["faces_are_crops"])
        return rgb.size, det, faces

    async def predict(self, data: bytes, opts: dict[str, Any]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        try:
            size, det, faces = await loop.run_in_executor(self.pool, self.find_faces, data, opts)
        except TooLarge as e:  # too many pixels: a possible decompression bomb
            raise Refused(413, str(e)) from None
        except EmotionError as e:  # not an image, truncated, …
            raise Refused(400, str(e)) from None
        tta = opts["tta"] or self.predictor.tta
        if self.limits.batching and self.pending > 1:
            probs = await asyncio.wrap_future(self.batcher.submit(faces, tta))
        else:
            # Alone (or unbatched): classified in the pool thread that found the faces, which is faster
            # than a hand-off to the batcher (measured), and never on the event loop, which serves the others.
            probs = await loop.run_in_executor(self.pool, lambda: self.batcher.submit_alone(faces, tta))
        result = self.predictor.result(size, det, faces, probs, min_quality=opts["min_quality"],
                                       abstain=opts["abstain"])
        if opts["explain"] and result.faces:  # occlusion: ~145 classifier passes a face, off the event loop
            result = await loop.run_in_executor(self.pool, self.predictor.explain_result, result)
            result = replace(result, faces=[replace(f, explanation="data:image/png;base64," + _png_b64(
                overlay(f.crop, f.saliency))) for f in result.faces])
        out = {"schema_version": SCHEMA_VERSION, **result.to_dict(), "tta": tta}
        if opts["crops"]:
            for face, doc in zip(result.faces, out["faces"]):
                doc["crop_png"] = _png_b64(face.crop)
        return out

    @contextmanager
    def admitted(self) -> Iterator[_Slot]:
        """A slot for one request: 503 when ``max_pending`` are under way. The slot is freed on leaving,
        or, for work still running (a timed-out request's, shielded), when that work ends, so the work
        admitted stays bounded."""
        if self.pending >= self.limits.max_pending:
            raise Refused(503, f"the server is busy ({self.limits.max_pending} requests in progress); retry "
                               "shortly.", {"Retry-After": "1"})
        self.pending += 1
        slot = _Slot()
        try:
            yield slot
        finally:
            if slot.work is None or slot.work.done():
                self.pending -= 1
            else:
                slot.work.add_done_callback(self._release)

    def _release(self, task: asyncio.Future) -> None:
        self.pending -= 1
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log it as lost

    def refuse(self, status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
        """The one-line JSON refusal, counted for ``/health``."""
        self.refused[status] = self.refused.get(status, 0) + 1
        return _error(status, message, headers)

    def close(self) -> None:
        self.jobs.close()
        self.batcher.close()
        self.pool.shutdown(wait=True)


def _docs_page(app: FastAPI) -> str:
    """An API page built from the OpenAPI schema, with no script from elsewhere (works offline)."""
    rows = []
    for path, ops in app.openapi()["paths"].items():
        for method, op in ops.items():
            rows.append(f"<tr><td><code>{method.upper()} {path}</code></td><td>{op.get('summary', '')}</td>"
                        f"<td>{op.get('description', '').replace(chr(10), '<br>')}</td></tr>")
    return ("<!doctype html><meta charset=utf-8><title>emotion API</title>"
            "<style>body{font:15px system-ui;margin:2em}td{border-top:1px solid #ddd;padding:.5em;"
            "vertical-align:top}</style><h1>emotion API</h1><p>The schema: <a href=openapi.json>openapi.json</a>."
            "</p><table>" + "".join(rows) + "</table>")


def _service(request: Request) -> _Service:
    return request.app.state.service


router = APIRouter()


@router.post("/predict", summary="Every face of an image and its expression",
             description="The image as the raw body or the multipart field 'file'. Returns schema_version, size, "
                         "faces (box, score, landmarks, label, probabilities over the model's classes) as "
                         "predictions.json does.")
async def predict(request: Request, opts: Annotated[dict[str, Any], Depends(predict_options)],
                  service: Annotated[_Service, Depends(_service)]) -> Response:
    limits = service.limits
    start = time.perf_counter()
    try:
        with service.admitted() as slot:
            data = _image_bytes(request.headers.get("content-type", ""),
                                await _read_body(request, int(limits.max_body_mb * 1e6)))
            slot.work = asyncio.ensure_future(service.predict(data, opts))
            out = await asyncio.wait_for(asyncio.shield(slot.work), timeout=limits.timeout_s)
    except Refused as e:
        return service.refuse(e.status, e.message, e.headers)
    except asyncio.TimeoutError:
        return service.refuse(504, f"the image was not processed within {limits.timeout_s:g} s; send a smaller "
                                   "one or retry.")
    service.served += 1
    out["time_ms"] = round((time.perf_counter() - start) * 1000, 2)
    return JSONResponse(out)


#: The query options of ``POST /predict/video``.
VIDEO_OPTIONS = ("every", "detect_every", "adaptive", "refine_tracks", "smooth")


def video_options(
    request: Request,
    every: int = Query(1, ge=1, le=1000, description="analyse every N-th frame"),
    detect_every: int = Query(DETECT_EVERY, ge=1, le=1000,
                              description="detect faces at least on every K-th analysed frame"),
    adaptive: bool = Query(True, description="detect between the K-th frames too whenever the tracks are unsettled; "
                                             "false: exactly every K-th"),
    refine_tracks: bool = Query(False, description="between detections, find each tracked face again near "
                                                    "where its track expects it"),
    smooth: float = Query(0.5, ge=0, lt=3600, description="time constant of each track's smoothing, s (0: raw)"),
) -> VideoOptions:
    unknown = sorted(set(request.query_params) - set(VIDEO_OPTIONS))
    if unknown:
        raise Refused(400, f"unknown query option {unknown[0]!r}; use {', '.join(VIDEO_OPTIONS)}.")
    return VideoOptions(every=every, detect_every=detect_every, smooth_s=smooth, refine=refine_tracks,
                        adaptive=adaptive)


@router.post("/predict/video", status_code=202, summary="Queue a video; answers its job id at once",
             description="The video as the raw body or the multipart field 'file'. The job runs the CLI's video "
                         "analysis (tracks, smoothing, summaries). Follow it at GET /jobs/{id}. Jobs live in "
                         "memory: they survive neither a restart nor a Ctrl-C.")
async def predict_video(request: Request, options: Annotated[VideoOptions, Depends(video_options)],
                        service: Annotated[_Service, Depends(_service)]) -> Response:
    limits = service.limits.video
    try:
        data = _image_bytes(request.headers.get("content-type", ""),
                            await _read_body(request, int(limits.max_mb * 1e6), "video"), "video")
        job = await asyncio.get_running_loop().run_in_executor(service.pool, service.jobs.submit, data, options)
    except Refused as e:
        return service.refuse(e.status, e.message, e.headers)
    return JSONResponse({"id": job.id, "state": job.state, "frames_total": job.frames_total,
                         "status_url": f"jobs/{job.id}", "timeline_url": f"jobs/{job.id}/timeline.png"},
                        status_code=202)


@router.get("/jobs/{job_id}", summary="A video job: progress, then its predictions.json",
            description="state (queued, running, done, error), frames_done of frames_total; when done, the "
                        "per-frame results and the track summaries exactly as predictions.json has them.")
async def job_status(job_id: str, service: Annotated[_Service, Depends(_service)]) -> dict[str, Any]:
    return service.jobs.get(job_id).status()


@router.get("/jobs/{job_id}/timeline.png", summary="A finished video job's per-person timeline")
async def job_timeline(job_id: str, service: Annotated[_Service, Depends(_service)]) -> Response:
    job = service.jobs.get(job_id)
    if job.state == "error":
        raise Refused(409, f"job {job_id} failed, so it has no timeline: {job.error}")
    if job.state != "done":
        raise Refused(409, f"job {job_id} is {job.state} ({job.frames_done} of {job.frames_total or '?'} frames); "
                           "ask again when its state is done.")
    if job.timeline is None:
        raise Refused(404, f"job {job_id} has no timeline (no frame was analysed).")
    return Response(job.timeline, media_type="image/png")


@router.get("/health", summary="Liveness, the model and the load")
async def health(service: Annotated[_Service, Depends(_service)]) -> dict[str, Any]:
    described = service.predictor.describe()
    return {"status": "ok", "schema_version": SCHEMA_VERSION, "model": described["model"],
            "settings": described["settings"],
            "limits": {**asdict(service.limits), "api_key": bool(service.limits.api_key)},
            "pending": service.pending, "served": service.served,
            "refused": {str(k): v for k, v in sorted(service.refused.items())},
            "batching": service.batcher.stats(), "video_jobs": service.jobs.stats()}


_STATIC = files("emotion.service") / "static"
#: What needs no API key: the liveness probe and the page (which asks for the key itself).
OPEN_PATHS = ("/health", "/", "/app.js")


@router.get("/", include_in_schema=False)
async def page() -> HTMLResponse:
    return HTMLResponse((_STATIC / "index.html").read_text())


@router.get("/app.js", include_in_schema=False)
async def script() -> Response:
    return Response((_STATIC / "app.js").read_text(), media_type="text/javascript")


@router.get("/docs", include_in_schema=False)
async def docs(request: Request) -> HTMLResponse:
    return HTMLResponse(_docs_page(request.app))


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = {404: f"no such page: {request.url.path}; see /docs",
               405: f"{request.method} is not allowed on {request.url.path}; see /docs"}.get(exc.status_code,
                                                                                           str(exc.detail))
    return _service(request).refuse(exc.status_code, message)


async def _refused(request: Request, exc: Refused) -> JSONResponse:
    """A refusal raised before the route runs (by a dependency: the query options)."""
    return _service(request).refuse(exc.status, exc.message, exc.headers)


async def _bad_query(request: Request, exc: RequestValidationError) -> JSONResponse:
    """A query option of the wrong type, as one line naming it (not FastAPI's 422 list)."""
    first = exc.errors()[0]
    name = str(first.get("loc", ("", "?"))[-1])
    given = request.query_params.get(name)
    return _service(request).refuse(400, f"{name}={given!r}: {first.get('msg', 'invalid')}.")


def create_app(predictor: FaceEmotionPredictor, limits: Limits = Limits()) -> FastAPI:
    """The FastAPI app serving ``predictor`` within ``limits``."""
    service = _Service(predictor, limits)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        service.close()

    app = FastAPI(title="emotion", version=str(SCHEMA_VERSION), docs_url=None, redoc_url=None, lifespan=lifespan,
                  description="Every face in a photo and its expression (this model's classes: "
                              f"{', '.join(predictor.class_names)}).")
    app.state.service = service
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _bad_query)
    app.add_exception_handler(Refused, _refused)

    @app.middleware("http")
    async def api_key(request: Request, call_next):
        key = limits.api_key
        if key and request.url.path not in OPEN_PATHS:
            given = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
            if not hmac.compare_digest(given.encode(), key.encode()):
                return service.refuse(401, "missing or wrong API key: send it as the X-API-Key header.")
        return await call_next(request)

    app.include_router(router)
    return app
