"""What the command-line tools share: argument types, each turning a string into a typed value or raising
``argparse.ArgumentTypeError`` with one line that says what to give (argparse prints it, exit 2), and the
option groups for videos and for trust per face."""

from __future__ import annotations

import argparse

from emotion.inference.detection import MinFace

__all__ = ["fraction", "min_face", "positive_int", "seconds", "trust_arguments", "video_arguments"]


def min_face(s: str) -> MinFace:
    try:
        return MinFace.parse(s)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def seconds(s: str) -> float:
    if s.lower() in ("off", "none", "0"):
        return 0.0
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a number of seconds (or 'off')") from None
    if not 0 <= v < 3600:
        raise argparse.ArgumentTypeError(f"must be between 0 and 3600 s, got {v}")
    return v


def positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def fraction(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a number") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {v}")
    return v


def video_arguments(ap: argparse.ArgumentParser) -> None:
    """``--every``, ``--detect-every``, ``--no-adaptive``, ``--refine-tracks``, ``--smooth``, ``--live``: a
    :class:`~emotion.inference.video.VideoOptions`."""
    from emotion.inference.video import DETECT_EVERY

    g = ap.add_argument_group("videos")
    g.add_argument("--every", type=positive_int, default=1, metavar="N", help="analyse every N-th video frame")
    g.add_argument("--detect-every", type=positive_int, default=DETECT_EVERY, metavar="K",
                   help="videos: detect faces at least on every K-th analysed frame; the face tracks carry them "
                        "between, and the frames between are searched too whenever the tracks are unsettled (a "
                        "face come or gone, leaving the frame, or drawing close to another; see --no-adaptive) "
                        "(default: %(default)s; 1: every frame)")
    g.add_argument("--no-adaptive", dest="adaptive", action="store_false",
                   help="videos: detect on exactly every K-th frame, and classify the carried faces between")
    g.add_argument("--refine-tracks", action="store_true",
                   help="videos, with --detect-every K > 1: between detections, find each tracked face again near "
                        "where its track expects it (MTCNN's last stage alone), rather than only carry its box")
    g.add_argument("--smooth", type=seconds, default=0.5, metavar="S",
                   help="videos: time constant of each track's smoothed emotions, in seconds; 0 or off: the raw "
                        "series (default: %(default)s)")
    g.add_argument("--live", action="store_true",
                   help="play video files at their own frame rate, dropping frames rather than lagging, as "
                        "webcams (0, 1, …) and stream URLs (rtsp://, http://) always are")


def trust_arguments(ap: argparse.ArgumentParser) -> None:
    """``--min-quality``, ``--abstain``, ``--explain`` (:mod:`emotion.inference.trust`)."""
    from emotion.inference.trust import ABSTAIN, MIN_QUALITY

    g = ap.add_argument_group("trust per face")
    g.add_argument("--min-quality", type=fraction, default=MIN_QUALITY, metavar="Q",
                   help="label a face 'uncertain' when its quality (0-1: size, sharpness, pose) is below Q; 0 labels "
                        "every face (default: %(default)s, measured: experiments/results/quality.md)")
    g.add_argument("--abstain", type=fraction, default=ABSTAIN, metavar="P",
                   help="label a face 'uncertain' when its top probability is below P; 0 labels every face "
                        "(default: %(default)s, measured: experiments/results/quality.md)")
    g.add_argument("--explain", action="store_true",
                   help="write each photo face's saliency overlay (occlusion: what the model looked at), "
                        "NAME_face<i>_explain.png, named in the results' explanation column")
