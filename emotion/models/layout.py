"""The memory format a model trains in on the CPU: channels-last where it is safe and pays.

oneDNN (torch 2.13) corrupts memory in the backward pass of a 1×1 convolution with stride > 1 and
fewer than 16 input channels when its activations are channels-last (NHWC): "double free or
corruption" or a segfault in ``jit_avx512_common_1x1_convolution_bwd_weights``, at most batch sizes
(even ones too), in fp32 and bf16 alike. Measured on AMD Zen 4/5 (AVX-512 BF16, no AMX), one layer
per process (``experiments/probe_conv_crash.py``): in_channels 2-15 crash; 1, 16, 17, 20, 24, the
3×3 and depthwise convolutions and stride-1 1×1 convolutions do not, nor does any layer in NCHW.
Pinning only those layers to NCHW inside an NHWC net still crashed (the layers around them feed
their backward pass NHWC), so a net that has one trains in NCHW as a whole (mini_xception: its first
residual branch, 8 → 16 channels); every other net keeps channels-last.

channels-last pays under bf16, not in fp32, so fp32 training on the CPU runs in NCHW as well.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["is_unsafe_channels_last", "unsafe_channels_last_layers", "cpu_training_memory_format"]


def is_unsafe_channels_last(module: nn.Module) -> bool:
    """A convolution whose channels-last backward pass oneDNN may crash in (see the module docstring)."""
    return (isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) and max(module.stride) > 1
            and module.in_channels < 16)


def unsafe_channels_last_layers(model: nn.Module) -> list[str]:
    """Names of the layers of ``model`` that must not train channels-last on the CPU."""
    return [name for name, module in model.named_modules() if is_unsafe_channels_last(module)]


def cpu_training_memory_format(model: nn.Module, precision: str,
                               channels_last: bool = True) -> tuple[torch.memory_format, str]:
    """The memory format ``model`` trains in on the CPU at Lightning ``precision``, and why."""
    if not channels_last:
        return torch.contiguous_format, "NCHW: model.channels_last=false"
    if not str(precision).startswith(("bf16", "16")):
        return torch.contiguous_format, "NCHW: channels-last pays under bf16 only"
    unsafe = unsafe_channels_last_layers(model)
    if unsafe:
        return torch.contiguous_format, (f"NCHW: oneDNN's channels-last backward of {unsafe[0]} "
                                         "(1×1, stride 2, < 16 channels) corrupts memory on some CPUs")
    return torch.channels_last, "channels-last"
