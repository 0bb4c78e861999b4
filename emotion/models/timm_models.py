"""Any timm architecture as ``timm/<name>`` (``model=timm model.name=resnet26d``), built from scratch for
1-channel 48-px faces and 7 classes, with timm's drop-path as a config value.

ImageNet stems shrink a 48-px face 4× before the first stage (a stride-2 conv and a max-pool, or a
stride-4 patchify conv), leaving a 1-2 px map at the end. As our ``resnet18`` does, the stem's first
strided convolution keeps stride 1 and a ResNet's stem max-pool is dropped, so the nets downsample
8× (ResNets) or 16× (the others) instead of 32×.
"""

from __future__ import annotations

from torch import nn

from emotion.errors import EmotionError

__all__ = ["PREFIX", "create_timm_model", "is_timm_name"]

PREFIX = "timm/"


def is_timm_name(name: str) -> bool:
    return str(name).startswith(PREFIX)


def _timm():
    try:
        import timm
    except ImportError:
        raise EmotionError("timm models need timm: pip install timm.") from None
    return timm


def check_timm_name(name: str) -> str | None:
    """None for a timm architecture timm knows, else what to do (for the config rules)."""
    arch = name[len(PREFIX):]
    timm = _timm()
    if timm.is_model(arch):
        return None
    close = timm.list_models(f"*{arch[:6]}*")[:5] if arch else []
    return f"timm has no model {arch!r}" + (f" (close: {', '.join(close)})" if close else "") + \
        "; see timm.list_models()"


def _adapt_stem(net: nn.Module) -> nn.Module:
    for module in net.modules():
        if isinstance(module, nn.Conv2d) and max(module.stride) > 1:
            module.stride = (1, 1)
            break
    if isinstance(getattr(net, "maxpool", None), nn.MaxPool2d):
        net.maxpool = nn.Identity()
    return net


def create_timm_model(name: str, num_classes: int = 7, in_chans: int = 1, drop_rate: float = 0.0,
                      drop_path_rate: float = 0.0) -> nn.Module:
    """``timm.create_model(arch, pretrained=False, …)`` for ``name`` = ``timm/<arch>``, stem adapted.

    Raises:
        EmotionError: timm is missing or does not know the architecture.
    """
    problem = check_timm_name(name)
    if problem:
        raise EmotionError(f"model {name!r}: {problem}.")
    net = _timm().create_model(name[len(PREFIX):], pretrained=False, num_classes=num_classes, in_chans=in_chans,
                               drop_rate=drop_rate, drop_path_rate=drop_path_rate)
    return _adapt_stem(net)
