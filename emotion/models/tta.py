"""Test-time augmentation: average a classifier's probabilities over flips and crops."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from emotion.errors import EmotionError

__all__ = ["TTA_MODES", "check_tta", "predict_proba"]

TTA_MODES = ("none", "flip", "tencrop")


def check_tta(tta: str | bool) -> str:
    """The TTA mode ``tta`` names (``True``: ``flip``, ``False``: ``none``), the one check of it.

    Raises:
        EmotionError: an unknown mode.
    """
    if isinstance(tta, bool):
        return "flip" if tta else "none"
    if tta not in TTA_MODES:
        raise EmotionError(f"tta={tta!r}: choose one of {', '.join(TTA_MODES)}.")
    return str(tta)


def _ten_crops(x: torch.Tensor) -> list[torch.Tensor]:
    # Upscale by 8/7 and take the four corners and the centre at the original size, plus mirrors:
    # the views a model trained with random crops/zooms saw.
    size = x.shape[-1]
    big = F.interpolate(x, scale_factor=8 / 7, mode="bilinear", align_corners=False)
    m = big.shape[-1] - size
    c = m // 2
    crops = [big[..., :size, :size], big[..., :size, m:], big[..., m:, :size], big[..., m:, m:],
             big[..., c:c + size, c:c + size]]
    return crops + [torch.flip(v, dims=[-1]) for v in crops]


@torch.no_grad()
def predict_proba(model: nn.Module, x: torch.Tensor, tta: str = "none") -> torch.Tensor:
    """Class probabilities (N, C) of ``model`` on the batch ``x``, averaged over TTA views."""
    tta = check_tta(tta)
    if tta == "none":
        views = [x]
    elif tta == "flip":
        views = [x, torch.flip(x, dims=[-1])]
    elif tta == "tencrop":
        views = _ten_crops(x)
    probs = torch.stack([model(v).float().softmax(dim=-1) for v in views])
    return probs.mean(dim=0)
