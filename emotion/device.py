"""Where models run and in what precision: the one home of the device and bf16 rules, for training
(the ``auto_precision`` resolver) and inference alike. Plain torch: no omegaconf, no Lightning."""

from __future__ import annotations

import os
import platform

import torch

__all__ = ["best_device", "cpu_has_native_bf16", "native_bf16", "choose_precision", "device_name",
           "missing_accelerator", "machine_name"]


def best_device() -> torch.device:
    """CUDA if available, else Apple MPS, else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def missing_accelerator(name: str) -> str | None:
    """What to do when the accelerator ``name`` (Lightning's: ``gpu``, ``cuda``, ``mps``, …) is not on this
    machine, or ``None`` when it is (or is chosen automatically)."""
    if name in ("gpu", "cuda") and not torch.cuda.is_available():
        return ("torch sees no GPU on this machine; use trainer=cpu, or trainer=default, which picks "
                "the accelerator that exists")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        return "torch sees no Apple GPU (MPS) on this machine; use trainer=cpu"
    return None


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX-512 BF16 or AMX). Without it oneDNN emulates
    bf16, which is slower than fp32, so bf16 autocast would not pay."""
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def choose_precision(accelerator: str = "auto") -> tuple[str, str]:
    """The Lightning precision for ``accelerator`` (``auto``, ``gpu``/``cuda`` or ``cpu``), and why.

    ``bf16-mixed`` where the device computes bf16 natively (a recent CUDA GPU; a CPU with AVX-512
    BF16 or AMX, where it trains 1.6-3.5x faster), else full 32-bit precision.
    """
    on_gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    if on_gpu:
        if torch.cuda.is_bf16_supported():
            return "bf16-mixed", "this GPU supports bf16"
        return "32-true", "this GPU has no bf16 support"
    if cpu_has_native_bf16():
        return "bf16-mixed", "this CPU has native bf16 (AVX-512 BF16 or AMX)"
    return "32-true", "this CPU has no native bf16 (AVX-512 BF16 or AMX), where bf16 would be emulated and slower"


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively (a bf16 GPU; a CPU with AVX-512 BF16 or AMX), where
    bf16 autocast is several times faster than fp32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_native_bf16()


def device_name(accelerator: str | None = None) -> str:
    """A readable name of the device that ran: the GPU's name, or the CPU with its core count."""
    if accelerator != "cpu" and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU {platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def machine_name() -> str:
    """The CPU's model name and core count (``AMD EPYC, 2 cores``), as benchmarks state the machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores"
