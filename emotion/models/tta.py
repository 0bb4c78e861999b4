"""Test-time augmentation: average a classifier's probabilities over flips and crops."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TTA_MODES", "predict_proba"]

TTA_MODES = ("none", "flip", "tencrop")


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
    if tta == "none":
        views = [x]
    elif tta == "flip":
        views = [x, torch.flip(x, dims=[-1])]
    elif tta == "tencrop":
        views = _ten_crops(x)
    else:
        raise ValueError(f"unknown tta {tta!r}; choose one of {', '.join(TTA_MODES)}")
    probs = torch.stack([model(v).float().softmax(dim=-1) for v in views])
    return probs.mean(dim=0)
