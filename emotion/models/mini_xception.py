"""mini-Xception (Arriaga et al., "Real-time Convolutional Neural Networks for Emotion and
Gender Classification", 2017), the small model shipped by the ``fer`` package."""

from __future__ import annotations

import torch
from torch import nn

from emotion.models.registry import register_model

__all__ = ["MiniXception", "mini_xception"]


def _conv_bn(cin: int, cout: int, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


def _sep_conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),  # depthwise
        nn.Conv2d(cin, cout, 1, bias=False),  # pointwise
        nn.BatchNorm2d(cout),
    )


class _XceptionBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.residual = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=2, bias=False), nn.BatchNorm2d(cout))
        self.body = nn.Sequential(
            _sep_conv_bn(cin, cout), nn.ReLU(inplace=True), _sep_conv_bn(cout, cout),
            nn.MaxPool2d(3, stride=2, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.residual(x)


class MiniXception(nn.Module):
    """Two plain convs, four residual depthwise-separable blocks, a conv head and global pooling."""

    def __init__(self, num_classes: int = 7, in_chans: int = 1, width: int = 8,
                 drop_rate: float = 0.0) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(_conv_bn(in_chans, w), _conv_bn(w, w))
        self.blocks = nn.Sequential(*[_XceptionBlock(a, b) for a, b in
                                      zip((w, 2 * w, 4 * w, 8 * w), (2 * w, 4 * w, 8 * w, 16 * w))])
        self.head = nn.Sequential(nn.Dropout(drop_rate), nn.Conv2d(16 * w, num_classes, 3, padding=1),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


@register_model
def mini_xception(num_classes: int = 7, in_chans: int = 1, drop_rate: float = 0.0) -> nn.Module:
    """mini-Xception as in the ``fer`` package (about 0.06 M params)."""
    return MiniXception(num_classes, in_chans, width=8, drop_rate=drop_rate)


@register_model
def xception_small(num_classes: int = 7, in_chans: int = 1, drop_rate: float = 0.1) -> nn.Module:
    """mini-Xception at 4× width (about 0.9 M params): a stronger CPU-trainable model."""
    return MiniXception(num_classes, in_chans, width=32, drop_rate=drop_rate)
