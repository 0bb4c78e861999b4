"""The VGG-style network of Khaireddin & Chen, "Facial Emotion Recognition: State of the Art
Performance on FER2013" (2021): four conv stages of two 3×3 conv-BN-ReLU blocks and a max-pool,
then three fully connected layers with dropout."""

from __future__ import annotations

from torch import nn

from emotion.models.registry import register_model

__all__ = ["VGGFace", "vgg", "vgg_slim", "vgg_tiny"]


def _stage(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class VGGFace(nn.Module):
    """VGG-style classifier; any input size (the head pools to 2×2 as the paper's 40-px crops give)."""

    def __init__(self, num_classes: int = 7, in_chans: int = 1, widths=(64, 128, 256, 512),
                 fc_dim: int = 4096, drop_rate: float = 0.2) -> None:
        super().__init__()
        chans = (in_chans, *widths)
        self.features = nn.Sequential(*[_stage(a, b) for a, b in zip(chans, chans[1:])])
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(widths[-1] * 4, fc_dim), nn.ReLU(inplace=True), nn.Dropout(drop_rate),
            nn.Linear(fc_dim, fc_dim), nn.ReLU(inplace=True), nn.Dropout(drop_rate),
            nn.Linear(fc_dim, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)))


@register_model
def vgg(num_classes: int = 7, in_chans: int = 1, drop_rate: float = 0.2) -> nn.Module:
    """VGG-style net of Khaireddin & Chen 2021 (about 30 M params)."""
    return VGGFace(num_classes, in_chans, drop_rate=drop_rate)


@register_model
def vgg_slim(num_classes: int = 7, in_chans: int = 1, drop_rate: float = 0.2) -> nn.Module:
    """The same conv stages with 1024-wide FC layers (8 M params): twice the CPU training speed of
    :func:`vgg`, whose two 4096-wide layers hold 25 M parameters for a 7-way output."""
    return VGGFace(num_classes, in_chans, fc_dim=1024, drop_rate=drop_rate)


@register_model
def vgg_tiny(num_classes: int = 7, in_chans: int = 1, drop_rate: float = 0.2) -> nn.Module:
    """The same layout at 3/8 of the width (24-48-96-192 channels, 512-wide FC layers, 1.3 M params):
    the fast model for video and bulk work (ms per face beside vgg_slim's in
    experiments/results/bench_inference.md)."""
    return VGGFace(num_classes, in_chans, widths=(24, 48, 96, 192), fc_dim=512, drop_rate=drop_rate)
