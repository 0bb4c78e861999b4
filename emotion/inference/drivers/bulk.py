"""Many images at the classifier's speed: decoding, detection and cropping in DataLoader worker
processes, the faces of many images classified in one batch in this one, results in input order.

Each worker runs :meth:`FaceEmotionPredictor.find_faces` (one torch thread each, so the workers and
the classifier share the cores instead of fighting over them); this process gathers faces until a
batch is full, classifies it with :meth:`~FaceEmotionPredictor.classify` and builds each image's
:class:`ImageResult` with :meth:`~FaceEmotionPredictor.result`: the same steps as
:meth:`~FaceEmotionPredictor.predict_rgb`, batched across images.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from emotion.errors import EmotionError, unexpected_failure
from emotion.inference.detection.detector import Detections
from emotion.inference.drivers.inputs import Job
from emotion.inference.images import load_image
from emotion.inference.predictor import FaceEmotionPredictor
from emotion.inference.results import ImageResult

__all__ = ["BulkItem", "iter_bulk_results"]


@dataclass
class BulkItem:
    """One image's outcome: its job, and either its result or the error message; ``rgb`` is the
    decoded image when asked for (to annotate it)."""

    job: Job
    result: ImageResult | None = None
    error: str | None = None
    rgb: Image.Image | None = None


@dataclass
class _Found:
    index: int
    size: tuple[int, int] = (0, 0)
    detections: Detections | None = None
    faces: np.ndarray | None = None
    error: str | None = None
    rgb: torch.Tensor | None = None  # (H, W, 3) uint8: a tensor travels through shared memory


class _Images(torch.utils.data.Dataset):
    def __init__(self, predictor: FaceEmotionPredictor, jobs: Sequence[Job], keep_rgb: bool) -> None:
        self.predictor, self.jobs, self.keep_rgb = predictor, list(jobs), keep_rgb

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, i: int) -> _Found:
        job = self.jobs[i]
        try:
            rgb, _ = load_image(job.path, max_pixels=self.predictor.max_pixels)
            det, faces = self.predictor.find_faces(rgb)
        except EmotionError as e:
            return _Found(i, error=str(e))
        except Exception as e:  # noqa: BLE001 - reported for this file; the others go on
            return _Found(i, error=unexpected_failure(job.path, e))
        keep = torch.from_numpy(np.asarray(rgb).copy()) if self.keep_rgb else None
        return _Found(i, rgb.size, det, faces, rgb=keep)


def _worker_init(worker_id: int, parent_pid: int) -> None:
    from emotion.data.workers import die_with_parent

    die_with_parent(parent_pid)
    torch.set_num_threads(1)


def iter_bulk_results(predictor: FaceEmotionPredictor, jobs: Sequence[Job], *, batch_faces: int = 256,
                      workers: int = 2, keep_rgb: bool = False) -> Iterator[BulkItem]:
    """Every image job's :class:`BulkItem`, in the order of ``jobs``.

    Args:
        predictor: finds and classifies the faces.
        jobs: image jobs (videos are not for this pipeline).
        batch_faces: faces per classifier batch (a batch also closes when the images run out).
        workers: decoding/detection processes; 0 does it all in this process (still batched).
        keep_rgb: also hand back each decoded image (for annotated figures).
    """
    loader = torch.utils.data.DataLoader(
        _Images(predictor, jobs, keep_rgb), batch_size=None, num_workers=workers,
        prefetch_factor=8 if workers else None, worker_init_fn=partial(_worker_init, parent_pid=os.getpid()),
        multiprocessing_context="fork" if workers else None)
    pending: list[_Found] = []
    n_faces = 0

    def flush() -> Iterator[BulkItem]:
        probs = predictor.classify_many([f.faces if f.error is None else None for f in pending])
        for found, p in zip(pending, probs):
            job = jobs[found.index]
            if found.error is not None:
                yield BulkItem(job, error=found.error)
                continue
            result = predictor.result(found.size, found.detections, found.faces, p, path=str(job.path))
            rgb = Image.fromarray(found.rgb.numpy()) if found.rgb is not None else None
            yield BulkItem(job, result=result, rgb=rgb)

    for found in loader:  # in index order: the DataLoader keeps it
        pending.append(found)
        n_faces += 0 if found.faces is None else len(found.faces)
        if n_faces >= batch_faces:
            yield from flush()
            pending, n_faces = [], 0
    if pending:
        yield from flush()
