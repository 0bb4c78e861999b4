"""A timm-style model registry: ``@register_model`` builders and ``create_model(name)``."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from emotion.errors import EmotionError

__all__ = ["register_model", "create_model", "list_models"]

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a builder under its function name; a second builder of the same name is refused."""
    if fn.__name__ in _BUILDERS and _BUILDERS[fn.__name__] is not fn:
        raise ValueError(f"a model named '{fn.__name__}' is already registered "
                         f"(by {_BUILDERS[fn.__name__].__module__}); choose another name")
    _BUILDERS[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_BUILDERS)


def create_model(name: str, num_classes: int = 7, in_chans: int = 1, channels_last: bool = False,
                 drop_path_rate: float = 0.0, **kwargs) -> nn.Module:
    """Build a registered model.

    Args:
        name: registered model name, e.g. ``resnet18``.
        num_classes: size of the output layer.
        in_chans: input channels (FER2013 is grayscale: 1).
        channels_last: keep conv weights in NHWC memory order, which oneDNN (CPU) and cuDNN (bf16)
            run faster; results are the same. A single-channel input is NCHW and NHWC at once, so
            the weights' order decides the convolutions'.
        drop_path_rate: stochastic depth, for timm models (``timm/<name>``, any architecture timm has).
        **kwargs: builder-specific options such as ``drop_rate``.

    Raises:
        EmotionError: if ``name`` is neither registered nor a timm architecture.
    """
    from emotion.models.timm_models import create_timm_model, is_timm_name

    if is_timm_name(name):
        model = create_timm_model(name, num_classes=num_classes, in_chans=in_chans, drop_path_rate=drop_path_rate,
                                  **kwargs)
        return model.to(memory_format=torch.channels_last) if channels_last else model
    if drop_path_rate:
        raise EmotionError(f"model.drop_path_rate={drop_path_rate}: only timm models (timm/<name>) have drop-path.")
    if name not in _BUILDERS:
        raise EmotionError(f"unknown model '{name}'. Known models: {', '.join(list_models())}, "
                           "or timm/<any timm architecture>.")
    model = _BUILDERS[name](num_classes=num_classes, in_chans=in_chans, **kwargs)
    return model.to(memory_format=torch.channels_last) if channels_last else model
