"""Serve a model over HTTP, with a web page to drop a photo on.

::

    python -m emotion.serve [--host 127.0.0.1] [--port 8000] [--checkpoint CKPT_OR_FOLDER] [--runtime torch|onnx]

``POST /predict`` takes an image (raw body or the multipart field ``file``) and returns its faces as
``predictions.json`` records them; ``POST /predict/video`` queues a video and ``GET /jobs/{id}`` follows it
to the same document (jobs live in memory: not across a restart); ``/`` is the page, ``/health`` the state,
``/docs`` the API.
SIGTERM or Ctrl-C stops it after the requests in progress (exit 0).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from emotion.errors import EmotionError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from emotion.inference import RUNTIMES
    from emotion.service import Limits

    d = Limits()
    ap = argparse.ArgumentParser(prog="python -m emotion.serve", description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--checkpoint", default=None, metavar="CKPT", help="a .ckpt or an exported model folder "
                    "(default: the bundled model)")
    ap.add_argument("--runtime", choices=RUNTIMES, default="torch")
    ap.add_argument("--device", choices=("cpu", "cuda", "mps"), default=None)
    ap.add_argument("--max-body-mb", type=float, default=d.max_body_mb, help="largest upload (default: %(default)s)")
    ap.add_argument("--max-pixels", type=int, default=d.max_pixels, help="largest image, width × height "
                    "(default: %(default)s)")
    ap.add_argument("--max-pending", type=int, default=d.max_pending, help="requests admitted at once; beyond, "
                    "503 with Retry-After (default: %(default)s)")
    ap.add_argument("--timeout", type=float, default=d.timeout_s, help="seconds per request (default: %(default)s)")
    ap.add_argument("--batch-wait-ms", type=float, default=d.batch_wait_ms,
                    help="how long a classifier batch waits for other requests' faces (default: %(default)s)")
    ap.add_argument("--max-batch", type=int, default=d.max_batch, help="most faces per batch (default: %(default)s)")
    ap.add_argument("--no-batching", action="store_true", help="classify each request on its own")
    ap.add_argument("--threads", type=int, default=d.threads, help="decoding and detection threads "
                    "(default: %(default)s)")
    v = d.video
    ap.add_argument("--max-video-mb", type=float, default=v.max_mb, help="largest video upload (default: %(default)s)")
    ap.add_argument("--max-video-s", type=float, default=v.max_s, help="longest video, s (default: %(default)s)")
    ap.add_argument("--max-video-frames", type=int, default=v.max_frames, help="most frames in a video "
                    "(default: %(default)s)")
    ap.add_argument("--max-video-jobs", type=int, default=v.max_jobs, help="video jobs queued or running at once; "
                    "beyond, 429 (default: %(default)s)")
    ap.add_argument("--keep-jobs", type=int, default=v.keep_jobs, help="finished video jobs kept in memory "
                    "(default: %(default)s)")
    ap.add_argument("--api-key", default=os.environ.get("EMOTION_API_KEY"),
                    help="require this key (X-API-Key header); default: $EMOTION_API_KEY, else none")
    ap.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    for name in ("max_body_mb", "max_pixels", "max_pending", "timeout", "max_batch", "threads", "max_video_mb",
                 "max_video_s", "max_video_frames", "max_video_jobs", "keep_jobs"):
        if getattr(args, name) <= 0:
            print(f"error: --{name.replace('_', '-')}={getattr(args, name)}: must be > 0.", file=sys.stderr)
            return 2
    import uvicorn

    from emotion.errors import quiet_library_warnings
    from emotion.inference import FaceEmotionPredictor
    from emotion.service import Limits, create_app
    from emotion.service.jobs import VideoLimits

    quiet_library_warnings()
    try:
        predictor = FaceEmotionPredictor.from_checkpoint(args.checkpoint, device=args.device, runtime=args.runtime)
    except EmotionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    limits = Limits(max_body_mb=args.max_body_mb, max_pixels=args.max_pixels, max_pending=args.max_pending,
                    timeout_s=args.timeout, api_key=args.api_key or None, max_batch=args.max_batch,
                    batch_wait_ms=args.batch_wait_ms, batching=not args.no_batching, threads=args.threads,
                    video=VideoLimits(max_mb=args.max_video_mb, max_s=args.max_video_s,
                                      max_frames=args.max_video_frames, max_jobs=args.max_video_jobs,
                                      keep_jobs=args.keep_jobs))
    app = create_app(predictor, limits)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                            timeout_graceful_shutdown=max(5, int(args.timeout)), access_log=False)
    server = uvicorn.Server(config)
    print(f"serving {predictor.checkpoint} model on http://{args.host}:{args.port}/ (Ctrl-C stops)", flush=True)
    server.run()  # uvicorn turns SIGTERM and SIGINT into a graceful shutdown
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
