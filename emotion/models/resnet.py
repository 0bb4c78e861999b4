"""torchvision ResNets with the stem adapted to 48×48 single-channel faces."""

from __future__ import annotations

from torch import nn

from emotion.models.registry import register_model

__all__ = ["resnet18", "resnet34"]


def _adapt(net: nn.Module, num_classes: int, in_chans: int, drop_rate: float) -> nn.Module:
    # ImageNet's 7×7/2 conv + max-pool would shrink a 48-px face to 12 px before the first block;
    # a 3×3/1 conv without pooling keeps the full resolution (final feature map 6×6).
    net.conv1 = nn.Conv2d(in_chans, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    net.fc = nn.Sequential(nn.Dropout(drop_rate), nn.Linear(net.fc.in_features, num_classes))
    return net


@register_model
def resnet18(num_classes: int = 7, in_chans: int = 1, drop_rate: float = 0.0) -> nn.Module:
    """ResNet-18 (11 M params), randomly initialised."""
    from torchvision.models import resnet18 as tv_resnet18  # here: torchvision costs ~1.1 s to import

    return _adapt(tv_resnet18(weights=None), num_classes, in_chans, drop_rate)


@register_model
def resnet34(num_classes: int = 7, in_chans: int = 1, drop_rate: float = 0.0) -> nn.Module:
    """ResNet-34 (21 M params), randomly initialised."""
    from torchvision.models import resnet34 as tv_resnet34

    return _adapt(tv_resnet34(weights=None), num_classes, in_chans, drop_rate)
