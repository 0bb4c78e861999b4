"""Dynamic batching: the faces of concurrent requests are classified in one batch."""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from typing import Callable

import numpy as np

__all__ = ["FaceBatcher"]

_STOP = object()


class FaceBatcher:
    """A thread that gathers the faces submitted within ``max_wait_ms`` of the first (up to
    ``max_batch`` faces) and classifies them with one call of ``classify_many(face_sets, tta)`` per TTA
    mode (:meth:`~emotion.inference.FaceEmotionPredictor.classify_many`: one batch, each request's rows back).

    Requests wait for detection in their own threads, so the classifier's batch grows with the
    load. A batch waits only while ``in_flight()`` (the requests admitted) says that more requests
    than it holds are under way, so a lone request is classified at once. ``max_wait_ms=0``
    still batches whatever is already queued; ``enabled=False`` classifies each request on its own,
    in the caller's thread (the baseline the benchmark compares with).

    Args:
        classify_many: ``(list of faces (N_i, 48, 48) uint8, tta) -> list of probabilities (N_i, C)``.
        max_batch: most faces per classifier call.
        max_wait_ms: how long the first request of a batch waits for others.
        enabled: batch at all.
        in_flight: how many requests are under way (default: the batch is always worth waiting for).
    """

    def __init__(self, classify_many: Callable[[list[np.ndarray], str], list[np.ndarray]], max_batch: int = 256,
                 max_wait_ms: float = 5.0, enabled: bool = True, in_flight: Callable[[], int] | None = None) -> None:
        self.classify_many = classify_many
        self.max_batch = int(max_batch)
        self.max_wait = max(0.0, float(max_wait_ms)) / 1000
        self.enabled = bool(enabled)
        self.in_flight = in_flight or (lambda: self.max_batch + 1)
        self.batches = 0  # classifier calls, and the faces and requests they held: for /health
        self.faces = 0
        self.largest = 0
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()  # classifier calls never overlap: one batch at a time
        self._thread = threading.Thread(target=self._loop, name="face-batcher", daemon=True)
        if self.enabled:
            self._thread.start()

    def submit(self, faces: np.ndarray, tta: str = "none") -> Future:
        """A future of the probabilities (N, C) of ``faces``."""
        future: Future = Future()
        if len(faces) == 0 or not self.enabled:
            try:
                future.set_result(self.submit_alone(faces, tta))
            except Exception as e:  # noqa: BLE001 - delivered to the waiting request
                future.set_exception(e)
            return future
        self._queue.put((faces, tta, future))
        return future

    def submit_alone(self, faces: np.ndarray, tta: str = "none") -> np.ndarray:
        """The probabilities of ``faces`` classified now, in the caller's thread, counted in :meth:`stats`."""
        return self._run([faces], tta)[0] if len(faces) else self.classify_many([faces], tta)[0]

    def close(self) -> None:
        """Stop the thread after the batches already queued."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout=30)

    def stats(self) -> dict[str, float]:
        return {"batches": self.batches, "faces": self.faces, "largest_batch": self.largest,
                "mean_batch": round(self.faces / self.batches, 2) if self.batches else 0.0}

    def _run(self, face_sets: list[np.ndarray], tta: str) -> list[np.ndarray]:
        n = sum(len(f) for f in face_sets)
        with self._lock:
            probs = self.classify_many(face_sets, tta)
            self.batches += 1
            self.faces += n
            self.largest = max(self.largest, n)
        return probs

    def _loop(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            if item is _STOP:
                return
            items, n = [item], len(item[0])
            deadline = time.monotonic() + self.max_wait
            while n < self.max_batch:
                if self._queue.empty() and self.in_flight() <= len(items):
                    break  # nobody else is coming: waiting would only add latency
                try:
                    more = self._queue.get(timeout=max(0.0, deadline - time.monotonic())) \
                        if self.max_wait else self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stop = True
                    break
                items.append(more)
                n += len(more[0])
            for tta in dict.fromkeys(t for _, t, _ in items):  # one call per TTA mode, in arrival order
                group = [(f, fut) for f, t, fut in items if t == tta]
                try:
                    probs = self._run([f for f, _ in group], tta)
                except Exception as e:  # noqa: BLE001 - every waiting request gets the error
                    for _, fut in group:
                        fut.set_exception(e)
                    continue
                for (_, fut), p in zip(group, probs):
                    fut.set_result(p)
