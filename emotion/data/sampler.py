"""Training order and augmentation drawn from ``(seed, epoch)`` alone.

A resumed run must replay the epochs after its checkpoint exactly as an uninterrupted run would.
Global random state cannot promise that: DataLoader workers are seeded from it, persistent workers
keep their own streams across epochs, and a fresh process starts them anew. So the sampler draws
each epoch's order from a generator seeded with ``(seed, epoch)`` and hands every dataset item its
own augmentation seed with its index.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

__all__ = ["EpochSampler", "derive_seed"]

_STREAM = 0  # keeps the sampler's seeds apart from other users of derive_seed


def derive_seed(seed: int, *keys: int) -> int:
    """A well-mixed 31-bit seed for the part of a run seeded with ``seed`` that ``keys`` name
    (an epoch, a step, a stream)."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0] & 0x7FFFFFFF)


class EpochSampler(Sampler[tuple[int, int]]):
    """Yields ``(index, augmentation_seed)`` pairs: a permutation, or a weighted draw with
    replacement (class-balanced sampling), that depends only on ``seed`` and the epoch.

    Args:
        num_samples: dataset length.
        seed: the run's seed.
        epoch: the epoch the first iteration serves (a resumed run starts past 0).
        weights: per-item sampling weights; ``None`` for a plain shuffle.

    Lightning calls :meth:`set_epoch` before each epoch. Where it cannot (a wrapper in
    distributed runs), each iteration moves on to the next epoch by itself.
    """

    def __init__(self, num_samples: int, seed: int, epoch: int = 0,
                 weights: Sequence[float] | torch.Tensor | None = None) -> None:
        self.num_samples = num_samples
        self.seed = seed
        self.epoch = epoch
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.double)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        g = torch.Generator().manual_seed(derive_seed(self.seed, epoch, _STREAM))
        if self.weights is None:
            order = torch.randperm(self.num_samples, generator=g)
        else:
            order = torch.multinomial(self.weights, self.num_samples, replacement=True, generator=g)
        # One seed per position, not per index: a face drawn twice is augmented two ways.
        seeds = torch.randint(0, 2**31 - 1, (self.num_samples,), generator=g)
        return iter(list(zip(order.tolist(), seeds.tolist())))
