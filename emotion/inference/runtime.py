"""The classifier under ONNX Runtime instead of torch: same inputs, same logits, no torch kernels."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from emotion.checkpoint import ONNX_FILE, WEIGHTS_FILE, HParams, export_onnx, load_model, model_source
from emotion.errors import EmotionError

__all__ = ["RUNTIMES", "OnnxClassifier", "load_classifier"]

RUNTIMES = ("torch", "onnx")


class OnnxClassifier(nn.Module):
    """An ONNX file run by ONNX Runtime on the CPU, called like the torch model it came from:
    a batch from :func:`emotion.data.to_model_input` → logits (a torch tensor).

    Attributes:
        hparams, meta: as on :class:`~emotion.checkpoint.TrainedModel`.
        path: the ONNX file.
    """

    runtime = "onnx"

    def __init__(self, path: str | os.PathLike, hparams: dict[str, Any], meta: dict[str, Any] | None = None,
                 threads: int | None = None) -> None:
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError:
            raise EmotionError("runtime 'onnx' needs ONNX Runtime: pip install 'emotion[onnx]' "
                               "(make install does).") from None
        options = ort.SessionOptions()
        # torch's own thread count, so that the two runtimes compare on equal terms.
        options.intra_op_num_threads = threads or torch.get_num_threads()
        self.path = Path(path)
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - ORT raises its own types for unreadable models
            raise EmotionError(f"'{path}' is not a loadable ONNX model ({str(e)[:200]}); export it again "
                               "with python -m emotion.export … --onnx.") from None
        self.hparams = HParams(hparams)
        self.meta = meta or {}

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (logits,) = self.session.run(None, {"faces": np.ascontiguousarray(x.detach().float().cpu().numpy())})
        return torch.from_numpy(logits)


def load_classifier(path: str | os.PathLike | None = None, runtime: str = "torch",
                    device: str | torch.device | None = None) -> nn.Module:
    """:func:`~emotion.checkpoint.load_model` for ``runtime="torch"``; for ``"onnx"`` the same
    model as an :class:`OnnxClassifier` (on the CPU).

    An exported folder's ``model.onnx`` is used when present. Otherwise the ONNX file is made once
    from the weights and kept in the cache folder (``$EMOTION_CACHE_DIR``, else ``~/.cache/emotion``),
    keyed by the weights' hash, so a changed model is never served a stale graph.
    """
    if runtime not in RUNTIMES:
        raise EmotionError(f"runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}.")
    model = load_model(path, device="cpu" if runtime == "onnx" else device)
    if runtime == "torch":
        return model
    source = model_source(path)
    onnx_path = source / ONNX_FILE if source.is_dir() else None
    if onnx_path is None or not onnx_path.is_file():
        onnx_path = _cached_onnx(source, model)
    return OnnxClassifier(onnx_path, dict(model.hparams), model.meta)


def _cached_onnx(source: Path, model: nn.Module) -> Path:
    from emotion.data.sources.cache import default_cache_dir

    weights = source / WEIGHTS_FILE if source.is_dir() else source
    digest = hashlib.sha1()
    with open(weights, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    path = Path(default_cache_dir()).expanduser() / "onnx" / f"{model.hparams['arch']}-{digest.hexdigest()[:16]}.onnx"
    return path if path.is_file() else export_onnx(model, path)
