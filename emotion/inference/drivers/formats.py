"""File suffixes the predictor treats as images and as videos."""

from emotion.data.preprocess import IMAGE_SUFFIXES

__all__ = ["IMAGE_SUFFIXES", "VIDEO_SUFFIXES"]

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})
