"""Checkpoints: one `.safetensors` file, JSON config in its metadata, validated on load.

Nothing here unpickles: the header is parsed by hand (bounded length, offsets checked
against the file size) before safetensors reads any tensor, so a pickle renamed
`.safetensors`, a truncated file or a header claiming a huge length is refused in one line.
Runs live in `MOA_RUNS_DIR` (default ./runs), bounded by `MOA_RUNS_MAX_COUNT` run files and
`MOA_RUNS_MAX_MB` in all. A run's name only ever appears whole: the file is written under a
hidden temp name, synced, then hard-linked to its final name (which fails rather than clobbers
when the name is taken), so a save killed at any moment leaves at most a hidden temp file,
which the listing ignores and the next save removes once it is stale.
"""

from __future__ import annotations

import json
import os
import platform
import stat
import struct
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_bytes
from safetensors.torch import save_file
from torch import nn

import moa_core
from moa_core.limits import env_number, size_text
from moa_core.models import ConfigError, ModelConfig, build_model, config_from_dict

MAX_HEADER_BYTES = 1 << 20
DEFAULT_MAX_FILE_MB = 512
DEFAULT_RUNS_MAX_COUNT = 500  # run files in the registry (MOA_RUNS_MAX_COUNT)
DEFAULT_RUNS_MAX_MB = 2048  # bytes of runs and pending temp files, in MB (MOA_RUNS_MAX_MB)
STALE_TEMP_SECONDS = 600  # a save's temp file this old was left by a killed process
CONFIG_KEY, META_KEY = "moa_config", "moa_meta"
RUN_SUFFIX, TEMP_SUFFIX = ".safetensors", ".tmp"
HISTORY_SUFFIX = ".metrics.jsonl"  # a run's per-epoch training record, beside it (`moa train`)
# Saves happen in one server process: one lock makes "check the limits, claim the name" a
# single step, so two saves at once never both squeeze past a limit.
_REGISTRY_LOCK = threading.Lock()


class CheckpointError(ValueError):
    """Why a checkpoint cannot be used, in one line."""


class RegistryFullError(CheckpointError):
    """The run registry is at its count or size limit; nothing was written."""


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


@dataclass
class RunListing:
    """The registry's readable runs (newest first) and one line per entry left out."""

    runs: list[RunInfo]
    skipped: list[str]


def runs_dir() -> Path:
    return Path(os.environ.get("MOA_RUNS_DIR", "runs"))


def max_file_bytes() -> int:
    return int(_limit("MOA_MAX_CHECKPOINT_MB", DEFAULT_MAX_FILE_MB) * 2**20)


def _limit(variable: str, default: float) -> float:
    """A limit from the environment; a bad value is a one-line CheckpointError."""
    try:
        return env_number(variable, default)
    except ValueError as err:
        raise CheckpointError(str(err)) from None


def runs_max_count() -> float:
    return _limit("MOA_RUNS_MAX_COUNT", DEFAULT_RUNS_MAX_COUNT)


def runs_max_bytes() -> float:
    return _limit("MOA_RUNS_MAX_MB", DEFAULT_RUNS_MAX_MB) * 2**20


def _number(value: float) -> str:
    """A limit as the user would write it: "500", "0.5", "inf"."""
    return str(int(value)) if value.is_integer() and value < 1e15 else f"{value:g}"


def save_checkpoint(path: Path, model: nn.Module, config: ModelConfig, meta: dict) -> Path:
    """Write model weights + config + metadata atomically (temp file in the same dir, rename
    over `path`, replacing a file already there)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_temp(path, model, config, meta)
    try:
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _sync_dir(path.parent)
    return path


def _write_temp(path: Path, model: nn.Module, config: ModelConfig, meta: dict) -> Path:
    """The checkpoint, written and synced to a hidden temp file beside `path`
    (`.<name>.<random>.tmp`); nothing is left behind when writing fails."""
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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _sync_dir(directory: Path) -> None:
    """Make a rename or link in `directory` durable (a no-op where folders can't be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
    """Save into the run registry under a readable, unique id; returns the file path.

    Refused with a `RegistryFullError`, leaving nothing behind, when the new run would take
    the registry past `MOA_RUNS_MAX_COUNT` runs or `MOA_RUNS_MAX_MB` in all.
    """
    directory = Path(directory) if directory is not None else runs_dir()
    max_count, max_bytes = runs_max_count(), runs_max_bytes()  # a bad value: before any write
    dataset = str(meta.get("dataset", "data")).replace(":", "_").replace(",", "-")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_id = f"{config.model_type}-{dataset}-{stamp}"
    directory.mkdir(parents=True, exist_ok=True)
    tmp = _write_temp(
        directory / f"{run_id}{RUN_SUFFIX}", model, config, {**meta, "created": stamp}
    )
    try:
        with _REGISTRY_LOCK:
            _remove_stale_temps(directory, keep=tmp)
            _check_room(directory, tmp, max_count, max_bytes)
            path = _claim(directory, run_id, tmp)
            _sync_dir(directory)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _check_room(directory: Path, tmp: Path, max_count: float, max_bytes: float) -> None:
    """Raise `RegistryFullError` unless the run written to `tmp` fits both limits."""
    count, used = _registry_usage(directory, exclude=tmp)
    if count + 1 > max_count:
        raise RegistryFullError(
            f"the run registry is full: {count} run{'' if count == 1 else 's'} "
            f"(MOA_RUNS_MAX_COUNT={_number(max_count)}); delete old runs or raise the limit"
        )
    new = tmp.stat().st_size
    if used + new > max_bytes:
        raise RegistryFullError(
            f"the run registry is full: {size_text(used)} used + {size_text(new)} for this run "
            f"(MOA_RUNS_MAX_MB={_number(max_bytes / 2**20)}); delete old runs or raise the limit"
        )


def _is_temp(name: str) -> bool:
    """A save's temp file: ours (`.<name>.<random>.tmp`), or the `.tmpXXXXXX` that
    safetensors' `save_file` itself writes before renaming it onto ours."""
    return name.startswith(".") and (name.endswith(TEMP_SUFFIX) or name.startswith(".tmp"))


def _registry_usage(directory: Path, exclude: Path) -> tuple[int, int]:
    """(run files, bytes of run files and temp files) in `directory`, from `stat` alone.

    Every visible `.safetensors` file counts as a run (reading 500 headers per save would be
    slow); a file linked under two names (a run and the temp it was made from) counts once.
    """
    count, used, seen = 0, 0, set()
    for entry in _entries(directory):
        is_run = entry.name.endswith(RUN_SUFFIX) and not entry.name.startswith(".")
        if not (is_run or _is_temp(entry.name)) or entry.path == str(exclude):
            continue
        try:
            info = entry.stat()
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode):
            continue
        count += is_run
        if (info.st_dev, info.st_ino) not in seen:
            seen.add((info.st_dev, info.st_ino))
            used += info.st_size
    return count, used


def _remove_stale_temps(directory: Path, keep: Path) -> None:
    """Remove temp files of saves that were killed: older than `STALE_TEMP_SECONDS`, or
    already linked to their run's name (killed between the link and the unlink)."""
    now = time.time()
    for entry in _entries(directory):
        if not _is_temp(entry.name) or entry.path == str(keep):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(info.st_mode) and (
                info.st_nlink > 1 or now - info.st_mtime > STALE_TEMP_SECONDS
            ):
                os.unlink(entry.path)
        except OSError:
            continue


def _entries(directory: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(directory) as entries:
            return list(entries)
    except FileNotFoundError:
        return []


def _claim(directory: Path, run_id: str, tmp: Path) -> Path:
    """Give the finished file at `tmp` the first free name of `<run_id>[-N].safetensors`.

    `os.link` fails when the name is taken instead of replacing it, so a run never
    overwrites another, and the name appears only with the whole file behind it.
    """
    for suffix in range(1, 1000):
        path = directory / (
            f"{run_id}{RUN_SUFFIX}" if suffix == 1 else f"{run_id}-{suffix}{RUN_SUFFIX}"
        )
        try:
            os.link(tmp, path)
            return path
        except FileExistsError:
            continue
        except OSError:  # a file system without hard links: check, then rename (under the lock)
            if path.exists():
                continue
            os.replace(tmp, path)
            return path
    raise CheckpointError(f"{run_id}: too many runs with the same name")


def scan_runs(directory: Path | None = None) -> RunListing:
    """Every readable run in the registry, newest first, and one line per entry left out.

    Hidden files (the temp files of saves in progress) and runs' training records are not
    listed at all; every other entry that is not a readable run gets a "skipped: …" line.
    """
    directory = Path(directory) if directory is not None else runs_dir()
    try:
        entries = sorted(_entries(directory), key=lambda e: e.name)
    except OSError as err:
        return RunListing([], [f"skipped: cannot read the run folder {directory} ({err.strerror})"])
    found: list[tuple[float, str, RunInfo]] = []
    skipped = []
    for entry in entries:
        name = entry.name
        if name.startswith(".") or name.endswith(HISTORY_SUFFIX):  # a run's record: not a run
            continue
        try:
            if entry.is_dir():
                skipped.append(f"skipped: {name}/ is a folder, not a run")
                continue
            if not name.endswith(RUN_SUFFIX):
                skipped.append(f"skipped: {name} is not a {RUN_SUFFIX} run")
                continue
            if not entry.is_file():
                skipped.append(f"skipped: {name} is not a regular file")
                continue
            path = Path(entry.path)
            mtime = entry.stat().st_mtime
            config, meta = read_metadata(path)
        except FileNotFoundError:  # deleted while we looked: not worth a line
            continue
        except CheckpointError as err:
            skipped.append(f"skipped: {err}")
            continue
        except OSError as err:
            skipped.append(f"skipped: {name}: cannot read ({err.strerror})")
            continue
        found.append((mtime, name, RunInfo(path.stem, path, str(config.get("model_type")), meta)))
    found.sort(key=lambda item: item[:2], reverse=True)
    return RunListing([run for _, _, run in found], skipped)


def list_runs(directory: Path | None = None) -> list[RunInfo]:
    """Every readable run in the registry, newest first; unreadable files are left out
    (`scan_runs` also says which and why)."""
    return scan_runs(directory).runs
