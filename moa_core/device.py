"""Pick the torch device once, and name it for people."""

from __future__ import annotations

import torch


class DeviceError(ValueError):
    """The requested device does not exist on this machine."""


def resolve_device(name: str = "auto") -> torch.device:
    """Map 'auto' | 'cpu' | 'cuda' | 'cuda:N' to a device, preferring the GPU for 'auto'."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"device '{name}' requested but no CUDA GPU is available")
    if name != "cpu" and not name.startswith("cuda"):
        raise DeviceError(f"unknown device '{name}' (use auto, cpu or cuda)")
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    """A one-line label such as 'GPU: NVIDIA H100' or 'CPU (2 threads)'."""
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'' if threads == 1 else 's'})"
