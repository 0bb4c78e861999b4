"""The bulk pipeline as a Ray Data job, for one machine or a cluster (``pip install 'emotion[ray]'``).

read paths → decode, detect and crop (an actor pool, one predictor per actor) → classify (an actor
pool, batches of many images' faces) → one row per face with the CSV's columns, written as Parquet.
Both stages are :class:`FaceEmotionPredictor`'s own steps (``find_faces``, then ``classify`` and
``result``), and the rows are :func:`~emotion.inference.outputs.table.face_rows`' rows: the same results
as the local engine, face for face. A file that cannot be read becomes a row with an ``error``; the
job goes on.

Without an address it starts a local Ray instance; ``address="auto"`` or ``ray://host:10001`` joins
a running cluster (``ray start --head`` on one machine, ``ray start --address=HEAD:6379`` on the others),
where every path must be readable by every worker (a shared file system).
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from emotion.errors import EmotionError, unexpected_failure

__all__ = ["read_paths", "run_ray", "summarize"]


def read_paths(inputs: Sequence[str]) -> list[str]:
    """Image paths from folders (searched as the CLI does), image files, text files of paths (one a
    line, ``#`` comments) and Parquet tables with a ``path`` column.

    Raises:
        EmotionError: an input that does not exist, or a table without a ``path`` column.
    """
    from emotion.inference.drivers.inputs import collect_inputs

    paths: list[str] = []
    for arg in inputs:
        p = Path(arg)
        if p.suffix.lower() == ".txt" and p.is_file():
            paths += [line.strip() for line in p.read_text().splitlines() if line.strip() and not line.startswith("#")]
        elif p.suffix.lower() == ".parquet" and p.is_file():
            import pyarrow.parquet as pq

            table = pq.read_table(p)
            if "path" not in table.column_names:
                raise EmotionError(f"'{p}' has no 'path' column (it has: {', '.join(table.column_names)}).")
            paths += [str(v) for v in table.column("path").to_pylist()]
        else:
            jobs, missing = collect_inputs([arg])
            if missing:
                raise EmotionError(missing[0][1])
            paths += [str(j.path) for j in jobs if j.kind == "image"]
    return paths


class _FindFaces:
    """Stage 1 actor: each row's image decoded, its faces found and cropped."""

    def __init__(self, checkpoint: str | None, options: dict[str, Any]) -> None:
        import torch

        from emotion.inference import FaceEmotionPredictor

        torch.set_num_threads(1)  # one core per actor: the pool size decides the parallelism
        self.predictor = FaceEmotionPredictor.from_checkpoint(checkpoint, device="cpu", **options)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        from emotion.inference import load_image

        out: dict[str, list] = {k: [] for k in ("path", "width", "height", "n", "boxes", "scores", "landmarks",
                                                  "faces", "error")}
        for path in batch["path"]:
            path = str(path)
            row: dict[str, Any] = {"path": path, "width": 0, "height": 0, "n": 0, "boxes": b"", "scores": b"",
                                   "landmarks": b"", "faces": b"", "error": ""}
            try:
                rgb, _ = load_image(path, max_pixels=self.predictor.max_pixels)
                det, faces = self.predictor.find_faces(rgb)
                row.update(width=rgb.size[0], height=rgb.size[1], n=len(det),
                           boxes=np.asarray(det.boxes, np.float64).tobytes(),
                           scores=np.asarray(det.scores, np.float64).tobytes(),
                           landmarks=b"" if det.landmarks is None else np.asarray(det.landmarks, np.float64).tobytes(),
                           faces=np.ascontiguousarray(faces, np.uint8).tobytes())
            except EmotionError as e:
                row["error"] = str(e)
            except Exception as e:  # noqa: BLE001 - one bad file is a row, not a failed job
                row["error"] = unexpected_failure(path, e)
            for k, v in row.items():
                out[k].append(v)
        return out


class _Classify:
    """Stage 2 actor: the faces of a batch of images in one classifier call, then one row per face."""

    def __init__(self, checkpoint: str | None, options: dict[str, Any]) -> None:
        import torch

        from emotion.inference import FaceEmotionPredictor

        torch.set_num_threads(1)
        # The classifier only: no detector is needed here, but building one is cheap and keeps one type.
        self.predictor = FaceEmotionPredictor.from_checkpoint(checkpoint, device="cpu", **options)

    def __call__(self, batch: dict[str, np.ndarray]):
        from emotion.data.preprocess import FER_SIZE
        from emotion.inference.detection.detector import Detections
        from emotion.inference.outputs.table import face_rows, face_table

        names = self.predictor.class_names
        table = face_table(names)
        images = []
        for i in range(len(batch["path"])):
            n = int(batch["n"][i])
            faces = np.frombuffer(batch["faces"][i], np.uint8).reshape(n, FER_SIZE, FER_SIZE)
            marks = batch["landmarks"][i]
            det = Detections(np.frombuffer(batch["boxes"][i], np.float64).reshape(n, 4),
                             np.frombuffer(batch["scores"][i], np.float64),
                             np.frombuffer(marks, np.float64).reshape(n, 5, 2) if len(marks) else None)
            images.append((det, faces))
        # Errors travel as "" for none: a null in a numpy batch would arrive as NaN.
        probs = self.predictor.classify_many([None if err else f for (_, f), err in zip(images, batch["error"])])
        rows, errors = [], []
        for i, (det, faces) in enumerate(images):
            error = str(batch["error"][i]) or None
            if error is not None:
                image_rows = [[str(batch["path"][i])] + [None] * (len(table.columns) - 1)]
            else:
                result = self.predictor.result((int(batch["width"][i]), int(batch["height"][i])), det, faces,
                                               probs[i], path=str(batch["path"][i]))
                image_rows = face_rows([result.to_dict()], names)
            rows += image_rows
            errors += [error] * len(image_rows)
        import pyarrow as pa

        # Typed by the face table's schema, as predictions.parquet is: no block infers its own types.
        return table.arrow(rows).append_column("error", pa.array(errors, pa.string()))


def run_ray(inputs: Sequence[str], out_dir: str | os.PathLike, *, checkpoint: str | None = None,
            address: str | None = None, workers: int = 2, batch_images: int = 32,
            options: dict[str, Any] | None = None) -> Path:
    """Predict every image of ``inputs`` (see :func:`read_paths`) as a Ray Data job; write the rows
    to the Parquet folder ``out_dir`` and return it.

    Args:
        inputs: folders, image files, text files of paths, Parquet tables of paths.
        out_dir: where the Parquet files go (a folder; pandas and polars read it whole).
        checkpoint: a ``.ckpt`` or exported folder readable by every worker (default: the bundled model).
        address: a Ray cluster to join; ``None`` starts a local instance with ``workers`` CPUs.
        workers: actors that decode and detect (the classifier gets one more).
        batch_images: images per classifier batch.
        options: predictor settings (``tta``, ``min_face``, ``faces_are_crops``, ``align``, ``margin``).

    Raises:
        EmotionError: Ray is not installed, or the inputs hold no image.
    """
    # Ray's INFO lines and C++ notices would bury the one summary line users read.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    try:
        import ray
        import ray.data
    except ImportError:
        raise EmotionError("--engine ray needs Ray: pip install 'emotion[ray]'.") from None
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    paths = read_paths(inputs)
    if not paths:
        raise EmotionError(f"no images in {', '.join(inputs)}.")
    options = dict(options or {})
    warnings.filterwarnings("ignore", message="The minimum number of concurrent actors")
    started = False
    if not ray.is_initialized():
        kwargs = {"address": address} if address else {"num_cpus": workers + 1}
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False, **kwargs)
        started = True
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # rows in input order, as the local engine writes them
        ctx.enable_progress_bars = False
        ds = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=min(len(paths), 4 * workers))
        ds = ds.map_batches(_FindFaces, fn_constructor_args=(checkpoint, options), batch_size=4,
                            compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1, batch_format="numpy")
        ds = ds.map_batches(_Classify, fn_constructor_args=(checkpoint, options), batch_size=batch_images,
                            compute=ray.data.ActorPoolStrategy(size=1), num_cpus=1, batch_format="numpy")
        out = Path(out_dir)
        ds.write_parquet(str(out))
        return out
    finally:
        if started:
            ray.shutdown()


def summarize(out_dir: str | os.PathLike) -> tuple[int, int, list[str]]:
    """Images, faces and the error messages in the rows :func:`run_ray` wrote."""
    import pyarrow.parquet as pq

    rows = pq.read_table(out_dir, columns=["path", "face", "error"]).to_pylist()
    return len({r["path"] for r in rows}), sum(r["face"] is not None for r in rows), [r["error"] for r in rows
                                                                                    if r["error"]]
