"""Video: the source (a file, webcam or stream, opened once), the pipeline (detect, track, classify, smooth),
the tracker, the per-track smoothing and summaries, and the in-memory result for notebooks."""

from emotion.inference.video.pipeline import (
    DETECT_EVERY,
    VIDEO_DETECT_MAX_SIDE,
    VideoFrame,
    VideoOptions,
    analyze_video,
    iter_video_results,
)
from emotion.inference.video.result import VideoResult
from emotion.inference.video.source import VideoInfo, is_live_source, open_video, probe_video

__all__ = ["VideoOptions", "VideoInfo", "VideoFrame", "VideoResult", "open_video", "probe_video", "is_live_source",
           "iter_video_results", "analyze_video", "VIDEO_DETECT_MAX_SIDE", "DETECT_EVERY"]
