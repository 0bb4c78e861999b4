"""Safe checkpoint loading: tensors and plain values only (``weights_only=True``), never code."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from emotion.errors import EmotionError

__all__ = ["read_checkpoint", "load_model", "best_device"]


def best_device() -> torch.device:
    """CUDA if available, else Apple MPS, else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a Lightning checkpoint with ``weights_only=True``.

    Raises:
        EmotionError: if the file is missing, truncated, not a checkpoint of this project, or
            holds objects that would run code when unpickled.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise EmotionError(f"checkpoint '{path}' not found. Pass the path of a .ckpt written by emotion.train.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise EmotionError(
            f"refused to load '{path}': it holds Python objects beyond tensors and plain values, which "
            f"could run code when loaded ({str(e).splitlines()[0][:200]}). Only load checkpoints you trust "
            "with torch.load(weights_only=False) yourself."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise EmotionError(
            f"'{path}' is not a readable checkpoint (truncated or corrupt: {str(e).splitlines()[0][:200]})."
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise EmotionError(f"'{path}' is not an emotion checkpoint (no state_dict/hyper_parameters).")
    return ckpt


def load_model(path: str | os.PathLike, device: str | torch.device | None = None):
    """Load a trained :class:`~emotion.module.EmotionClassifier` in eval mode, on the best device.

    Only tensors and plain values are read from the file. Calling the result on a batch from
    :func:`emotion.data.to_model_input` returns logits.
    """
    from emotion.module import EmotionClassifier  # the module pulls in Lightning; import lazily

    ckpt = read_checkpoint(path)
    model = EmotionClassifier(**ckpt["hyper_parameters"])
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise EmotionError(f"'{path}': weights do not fit the recorded architecture ({str(e)[:300]}).") from None
    return model.to(device or best_device()).eval()
