"""Checkpoints: one `.safetensors` file, JSON config in its metadata, validated on load.

Nothing here unpickles: the header is parsed by hand (bounded length, offsets checked
against the file size) before safetensors reads any tensor, so a pickle renamed
`.safetensors`, a truncated file or a header claiming a huge length is refused in one line.
Runs live in `MOA_RUNS_DIR` (default ./runs); every write is a temp file then a rename.
"""

from __future__ import annotations

import json
import os
import platform
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_bytes
from safetensors.torch import save_file
from torch import nn

import moa_core
from moa_core.models import ConfigError, ModelConfig, build_model, config_from_dict

MAX_HEADER_BYTES = 1 << 20
DEFAULT_MAX_FILE_MB = 512
CONFIG_KEY, META_KEY = "moa_config", "moa_meta"


class CheckpointError(ValueError):
    """Why a checkpoint cannot be used, in one line."""


@dataclass
class LoadedCheckpoint:
    model: nn.Module
    config: ModelConfig
    meta: dict[str, Any]


@dataclass
class RunInfo:
    run_id: str
    path: Path
    model_type: str
    meta: dict[str, Any]


def runs_dir() -> Path:
    return Path(os.environ.get("MOA_RUNS_DIR", "runs"))


def max_file_bytes() -> int:
    raw = os.environ.get("MOA_MAX_CHECKPOINT_MB", DEFAULT_MAX_FILE_MB)
    try:
        return int(float(raw) * 2**20)
    except ValueError:
        raise CheckpointError(f"MOA_MAX_CHECKPOINT_MB must be a number, got {raw!r}") from None


def save_checkpoint(path: Path, model: nn.Module, config: ModelConfig, meta: dict) -> Path:
    """Write model weights + config + metadata atomically (temp file in the same dir, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    full_meta = {
        **meta,
        "versions": {
            "moa_core": moa_core.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
    }
    metadata = {CONFIG_KEY: config.to_json(), META_KEY: json.dumps(full_meta)}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_header(path: Path) -> dict[str, Any]:
    """Parse and sanity-check the safetensors header without trusting anything in the file."""
    path = Path(path)
    size = _checked_size(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(8 + MAX_HEADER_BYTES)
    except OSError as err:
        raise CheckpointError(f"{path.name}: cannot read ({err.strerror})") from None
    return _parse_header(path.name, head, size)


def _checked_size(path: Path) -> int:
    if not path.is_file():
        raise CheckpointError(f"{path.name}: no such checkpoint file")
    size = path.stat().st_size
    if size > max_file_bytes():
        raise CheckpointError(
            f"{path.name}: {size:,} bytes exceeds the {max_file_bytes():,}-byte size limit"
        )
    return size


def _parse_header(name: str, head: bytes, size: int) -> dict[str, Any]:
    """The JSON header from the file's first bytes; `size` is the whole file's length."""
    if len(head) < 8:
        raise CheckpointError(f"{name}: too short to be a safetensors file")
    (header_len,) = struct.unpack("<Q", head[:8])
    if header_len > MAX_HEADER_BYTES or header_len > size - 8:
        raise CheckpointError(f"{name}: not a safetensors file (header claims {header_len} bytes)")
    try:
        header = json.loads(head[8 : 8 + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{name}: header is not valid JSON") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{name}: header is not a JSON object")
    _check_offsets(name, header, size - 8 - header_len)
    return header


def _check_offsets(name: str, header: dict, data_bytes: int) -> None:
    end = 0
    for key, info in header.items():
        if key == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and _naturals(offsets)):
            raise CheckpointError(f"{name}: tensor '{key}' has no valid data offsets")
        if not _naturals(info.get("shape")):
            raise CheckpointError(f"{name}: tensor '{key}' has no valid shape")
        end = max(end, offsets[1])
    if end != data_bytes:
        raise CheckpointError(
            f"{name}: truncated or padded ({data_bytes} data bytes, {end} needed)"
        )


def _naturals(values: Any) -> bool:
    """A list of non-negative ints (JSON true/false excluded)."""
    return isinstance(values, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values
    )


def read_metadata(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config dict, meta dict) from a checkpoint's header, no tensors read."""
    return _metadata(Path(path).name, read_header(path))


def _metadata(name: str, header: dict) -> tuple[dict[str, Any], dict[str, Any]]:
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict) or CONFIG_KEY not in metadata:
        raise CheckpointError(f"{name}: no Mixture Lab config in the metadata")
    try:
        config = json.loads(metadata[CONFIG_KEY])
        meta = json.loads(metadata.get(META_KEY, "{}"))
    except (TypeError, json.JSONDecodeError):
        raise CheckpointError(f"{name}: metadata is not valid JSON") from None
    if not (isinstance(config, dict) and isinstance(meta, dict)):
        raise CheckpointError(f"{name}: metadata is not a JSON object")
    _check_meta(name, meta)
    return config, meta


# What the CLI and the pages read from a run's meta, and the JSON type each must have.
META_SCHEMA = {"dataset": str, "train": dict, "metrics": dict, "usage": list, "epochs_done": int}
TRAIN_META_INTS = ("seed", "max_samples")


def _check_meta(name: str, meta: dict) -> None:
    for key, kind in META_SCHEMA.items():
        if key in meta and not isinstance(meta[key], kind):
            raise CheckpointError(f"{name}: metadata '{key}' must be a {kind.__name__}")
    for key in TRAIN_META_INTS:
        value = meta.get("train", {}).get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise CheckpointError(f"{name}: metadata 'train.{key}' must be an integer ≥ 0")


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Validate (type, config, tensor names and shapes, finite values) and build the model.

    The file is read once; the model is first built on the meta device (no memory), so a
    small file whose config claims a gigantic model is refused before anything is allocated.
    """
    path = Path(path)
    name = path.name
    _checked_size(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CheckpointError(f"{name}: cannot read ({err.strerror})") from None
    header = _parse_header(name, data[: 8 + MAX_HEADER_BYTES], len(data))
    config_dict, meta = _metadata(name, header)
    try:
        config = config_from_dict(config_dict)
        with torch.device("meta"):
            skeleton = build_model(config)
    except (ConfigError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{name}: {err}") from None
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    found = {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    _check_names_and_shapes(name, expected, found)
    try:
        tensors = load_bytes(data)
    except Exception as err:  # safetensors raises its own error types on corrupt data
        raise CheckpointError(f"{name}: unreadable tensor data ({err})") from None
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{name}: tensor '{key}' holds NaN or Inf values")
    model = build_model(config)
    model.load_state_dict(tensors)
    return LoadedCheckpoint(model.to(device).eval(), config, meta)


def _check_names_and_shapes(name: str, expected: dict, found: dict) -> None:
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing or extra:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {extra[:3]}"
        raise CheckpointError(f"{name}: tensor names do not match the model ({detail})")
    for key, shape in expected.items():
        if found[key] != shape:
            raise CheckpointError(
                f"{name}: tensor '{key}' has shape {list(found[key])}, expected {list(shape)}"
            )


def save_run(model: nn.Module, config: ModelConfig, meta: dict, directory: Path | None = None):
    """Save into the run registry under a readable, unique id; returns the file path."""
    directory = Path(directory) if directory is not None else runs_dir()
    dataset = str(meta.get("dataset", "data")).replace(":", "_").replace(",", "-")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_id = f"{config.model_type}-{dataset}-{stamp}"
    directory.mkdir(parents=True, exist_ok=True)
    path = _reserve(directory, run_id)
    return save_checkpoint(path, model, config, {**meta, "created": stamp})


def _reserve(directory: Path, run_id: str) -> Path:
    """Claim a fresh file name atomically (O_EXCL), so two saves in one second never collide."""
    for suffix in range(1, 1000):
        path = directory / (
            f"{run_id}.safetensors" if suffix == 1 else f"{run_id}-{suffix}.safetensors"
        )
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return path
        except FileExistsError:
            continue
    raise CheckpointError(f"{run_id}: too many runs with the same name")


def list_runs(directory: Path | None = None) -> list[RunInfo]:
    """Every readable run in the registry, newest first; unreadable files are skipped."""
    directory = Path(directory) if directory is not None else runs_dir()
    runs = []
    for path in sorted(directory.glob("*.safetensors"), key=os.path.getmtime, reverse=True):
        try:
            config, meta = read_metadata(path)
        except CheckpointError:
            continue
        runs.append(RunInfo(path.stem, path, str(config.get("model_type")), meta))
    return runs
