"""Average the class probabilities of several trained classifiers."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Ensemble"]


class Ensemble(nn.Module):
    """Members' softmax probabilities, averaged; returned as log-probabilities, so that a softmax of
    the output (what TTA and evaluation apply to logits) gives back the average.

    Args:
        members: trained classifiers returning logits.
        input_sizes: each member's input side; a batch of another size is resized for it (the
            normalisation is affine, so resizing the normalised batch equals normalising the resized faces).
    """

    def __init__(self, members: Sequence[nn.Module], input_sizes: Sequence[int]) -> None:
        super().__init__()
        if not members or len(members) != len(input_sizes):
            raise ValueError("an ensemble needs one input size per member, and at least one member")
        self.members = nn.ModuleList(members)
        self.input_sizes = [int(s) for s in input_sizes]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = []
        for net, size in zip(self.members, self.input_sizes):
            v = x if x.shape[-1] == size else F.interpolate(x, size=(size, size), mode="bilinear",
                                                             align_corners=False, antialias=True)
            probs.append(net(v).float().softmax(dim=-1))
        return torch.stack(probs).mean(dim=0).clamp_min(1e-12).log()
