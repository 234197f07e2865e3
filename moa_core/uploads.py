"""Checkpoints that arrive as bytes (a browser upload) get the same checks as files on disk.

The bytes go to a private temporary folder under the uploaded file's own (sanitized) name,
so every `CheckpointError` names the file the user picked, then `load_checkpoint` validates
them (size limit included); nothing is ever unpickled.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import torch

from moa_core.checkpoint import CheckpointError, LoadedCheckpoint, load_checkpoint

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_upload_name(name: str) -> str:
    """A bare file name with only [A-Za-z0-9._-], ending in .safetensors."""
    stem = _UNSAFE.sub("_", Path(str(name)).name).strip("._") or "upload"
    return stem if stem.endswith(".safetensors") else f"{stem}.safetensors"


def load_uploaded_checkpoint(
    name: str, data: bytes, device: str | torch.device = "cpu"
) -> LoadedCheckpoint:
    """Validate uploaded bytes and build the model, or raise `CheckpointError` (one line)."""
    file_name = safe_upload_name(name)
    if len(data) == 0:
        raise CheckpointError(f"{file_name}: the uploaded file is empty")
    with tempfile.TemporaryDirectory(prefix="moa-upload-") as folder:
        path = Path(folder) / file_name
        path.write_bytes(data)
        return load_checkpoint(path, device)
