"""Checkpoints: round trip, atomic writes, the run registry, and every way a file can be bad.

Each bad file is refused with a one-line `CheckpointError`, both by `load_checkpoint` and
by `moa eval` (exit code 2, one line on stderr, nothing on stdout), and nothing is ever
unpickled: a pickle whose loading would create a marker file leaves no marker.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from tiny import TINY

import moa_core
from moa_core import checkpoint
from moa_core.checkpoint import (
    CheckpointError,
    list_runs,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
    save_run,
)
from moa_core.cli import main
from moa_core.models import build_model
from moa_core.models.moa import MoAPlusConfig
from moa_core.train.run import TrainedRun, train_model


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the caller's runs, data folder or size limit."""
    monkeypatch.setenv("MOA_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("MOA_DATA_DIR", raising=False)
    monkeypatch.delenv("MOA_MAX_CHECKPOINT_MB", raising=False)


@pytest.fixture(scope="module")
def trained() -> TrainedRun:
    run = train_model("moa_plus", "digits", TINY)
    assert run.result.status == "finished"
    return run


@pytest.fixture
def good_file(trained: TrainedRun, tmp_path: Path) -> Path:
    return save_checkpoint(
        tmp_path / "good.safetensors", trained.model, trained.config, trained.checkpoint_meta()
    )


# --- round trip and atomic writes -------------------------------------------------------


def test_round_trip_keeps_weights_config_and_metadata(trained: TrainedRun, good_file: Path) -> None:
    loaded = load_checkpoint(good_file)
    assert loaded.config == trained.config
    assert type(loaded.config) is MoAPlusConfig
    original = trained.model.state_dict()
    state = loaded.model.state_dict()
    assert set(state) == set(original)
    for key, value in original.items():
        assert torch.equal(state[key], value.cpu()), key
    assert not loaded.model.training

    meta = loaded.meta
    assert meta["dataset"] == "digits"
    assert meta["metrics"]["nmi"] == trained.result.metrics["nmi"]
    assert meta["train"]["max_samples"] == 200
    assert meta["epochs_done"] == 1
    assert meta["versions"]["moa_core"] == moa_core.__version__
    assert meta["versions"]["torch"] == torch.__version__

    # The loaded model computes what the trained one computes.
    x = trained.dataset.x[:20]
    trained.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x).gate_probs, trained.model(x).gate_probs)


def test_read_metadata_reads_config_and_meta_without_building(good_file: Path) -> None:
    config, meta = read_metadata(good_file)
    assert config["model_type"] == "moa_plus"
    assert config["expert_channels"] == [4, 8]
    assert meta["dataset"] == "digits"


def test_save_leaves_only_the_checkpoint(trained: TrainedRun, tmp_path: Path) -> None:
    folder = tmp_path / "deep" / "folder"
    path = save_checkpoint(folder / "a.safetensors", trained.model, trained.config, {})
    assert sorted(p.name for p in folder.iterdir()) == ["a.safetensors"]
    # Overwriting replaces the file, again with nothing left beside it.
    save_checkpoint(path, trained.model, trained.config, {"dataset": "second"})
    assert sorted(p.name for p in folder.iterdir()) == ["a.safetensors"]
    assert read_metadata(path)[1]["dataset"] == "second"


def test_crash_mid_write_keeps_the_old_file_and_leaves_no_temp(
    trained: TrainedRun, good_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer dies after writing part of the file: the old checkpoint must survive."""

    def crash(tensors: dict, filename: str, metadata: dict | None = None) -> None:
        Path(filename).write_bytes(b"half a checkpoint")
        raise OSError("disk full (test)")

    before = good_file.read_bytes()
    monkeypatch.setattr(checkpoint, "save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(good_file, trained.model, trained.config, {"dataset": "new"})
    assert good_file.read_bytes() == before
    assert sorted(p.name for p in good_file.parent.iterdir()) == [good_file.name]
    with pytest.raises(OSError):
        save_checkpoint(good_file.parent / "fresh.safetensors", trained.model, trained.config, {})
    assert sorted(p.name for p in good_file.parent.iterdir()) == [good_file.name]


# --- run registry -----------------------------------------------------------------------


def test_save_run_names_are_unique_and_list_runs_is_newest_first(trained: TrainedRun) -> None:
    meta = trained.checkpoint_meta()
    paths = [save_run(trained.model, trained.config, meta) for _ in range(3)]
    assert len(set(paths)) == 3
    assert all(p.parent == checkpoint.runs_dir() for p in paths)
    assert all(p.name.startswith("moa_plus-digits-") for p in paths)
    for age, path in enumerate(paths):  # paths[0] oldest
        os.utime(path, (1_000_000 + age * 10, 1_000_000 + age * 10))
    runs = list_runs()
    assert [r.path for r in runs] == paths[::-1]
    assert all(r.model_type == "moa_plus" and r.meta["dataset"] == "digits" for r in runs)
    assert runs[0].run_id == paths[-1].stem


def test_list_runs_skips_bad_files(
    trained: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    folder = tmp_path / "runs"
    good = save_run(trained.model, trained.config, trained.checkpoint_meta())
    (folder / "junk.safetensors").write_bytes(b"not a checkpoint at all")
    (folder / "header_cut.safetensors").write_bytes(good.read_bytes()[:200])
    (folder / "data_cut.safetensors").write_bytes(good.read_bytes()[:-100])
    save_file({"w": torch.zeros(2)}, str(folder / "foreign.safetensors"))  # no Mixture Lab config
    # Listing reads headers only; files whose header or metadata is bad must be skipped.
    for name in HEADER_LEVEL:
        BAD_FILES[name][0](folder / f"{name}.safetensors", good, trained)
    (folder / "notes.txt").write_text("ignored: not a .safetensors file")
    assert [r.path for r in list_runs(folder)] == [good]
    # `moa list` shows the one good run, and one line on stderr per file it skipped.
    assert main(["list"]) == 0
    out, err = capsys.readouterr()
    bad = len(list(folder.iterdir())) - 1
    assert len(err.splitlines()) == bad and all(
        line.startswith("moa: skipped: ") for line in err.splitlines()
    )
    assert [json.loads(line)["path"] for line in out.splitlines()] == [str(good)]


def test_list_runs_of_an_empty_or_missing_folder(tmp_path: Path) -> None:
    assert list_runs(tmp_path / "missing") == []
    assert list_runs(tmp_path) == []


# --- bad files: every one refused in one line, by the loader and by `moa eval` -----------


class _Exploit:
    """Unpickling this opens (creates) `marker`: proof that a loader unpickled the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _pickle_file(path: Path, good: Path, trained: TrainedRun) -> None:
    path.write_bytes(pickle.dumps(_Exploit(path.with_suffix(".marker"))))


def _torch_zip_file(path: Path, good: Path, trained: TrainedRun) -> None:
    with path.open("wb") as handle:
        torch.save(trained.model.state_dict(), handle)
    assert path.read_bytes()[:2] == b"PK"  # really the zip format


def _torch_legacy_file(path: Path, good: Path, trained: TrainedRun) -> None:
    with path.open("wb") as handle:
        torch.save(trained.model.state_dict(), handle, _use_new_zipfile_serialization=False)


def _truncated_half(path: Path, good: Path, trained: TrainedRun) -> None:
    data = good.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _truncated_in_header(path: Path, good: Path, trained: TrainedRun) -> None:
    path.write_bytes(good.read_bytes()[:100])


def _huge_header(path: Path, good: Path, trained: TrainedRun) -> None:
    path.write_bytes(struct.pack("<Q", 2**60) + b"{}" + bytes(64))


def _empty(path: Path, good: Path, trained: TrainedRun) -> None:
    path.write_bytes(b"")


def _garbage_header(path: Path, good: Path, trained: TrainedRun) -> None:
    body = b"\xff\xfe not json \x00"
    path.write_bytes(struct.pack("<Q", len(body)) + body)


def _no_config(path: Path, good: Path, trained: TrainedRun) -> None:
    save_file(_tensors(trained), str(path), metadata={"other": "x"})


def _tensors(trained: TrainedRun) -> dict[str, torch.Tensor]:
    """A writable copy of the weights (contiguous, as safetensors wants them)."""
    return {k: v.detach().clone().contiguous() for k, v in trained.model.state_dict().items()}


def _meta(config_json: str) -> dict[str, str]:
    return {checkpoint.CONFIG_KEY: config_json, checkpoint.META_KEY: '{"dataset": "digits"}'}


def _unknown_type(path: Path, good: Path, trained: TrainedRun) -> None:
    config = {**trained.config.to_dict(), "model_type": "transformer_xl"}
    save_file(_tensors(trained), str(path), metadata=_meta(json.dumps(config)))


def _bad_config_value(path: Path, good: Path, trained: TrainedRun) -> None:
    config = {**trained.config.to_dict(), "latent_dim": "four"}
    save_file(_tensors(trained), str(path), metadata=_meta(json.dumps(config)))


def _wrong_shapes(path: Path, good: Path, trained: TrainedRun) -> None:
    # Tensors of a 2-expert model under a config that says 3 experts.
    two = build_model(trained.config.with_updates(num_clusters=2))
    assert trained.config.num_clusters == 3
    tensors = {k: v.contiguous() for k, v in two.state_dict().items()}
    save_file(tensors, str(path), metadata=_meta(trained.config.to_json()))


def _missing_tensor(path: Path, good: Path, trained: TrainedRun) -> None:
    tensors = _tensors(trained)
    del tensors["gate.net.0.weight"]
    save_file(tensors, str(path), metadata=_meta(trained.config.to_json()))


def _nan_weights(path: Path, good: Path, trained: TrainedRun) -> None:
    tensors = _tensors(trained)
    tensors["experts.encoder.0.weight"][0, 0, 0, 0] = float("nan")
    save_file(tensors, str(path), metadata=_meta(trained.config.to_json()))


def _inf_weights(path: Path, good: Path, trained: TrainedRun) -> None:
    tensors = _tensors(trained)
    tensors["gate.net.1.running_var"][0] = float("inf")
    save_file(tensors, str(path), metadata=_meta(trained.config.to_json()))


def _raw(path: Path, header: object, data: bytes = b"") -> None:
    """A hand-made safetensors file: 8-byte length, JSON header, data."""
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


def _offsets_not_numbers(path: Path, good: Path, trained: TrainedRun) -> None:
    _raw(path, {"w": {"dtype": "F32", "shape": [1], "data_offsets": ["0", "4"]}}, bytes(4))


def _no_shape(path: Path, good: Path, trained: TrainedRun) -> None:
    header = {"__metadata__": _meta(trained.config.to_json())}
    _raw(path, {**header, "w": {"dtype": "F32", "data_offsets": [0, 4]}}, bytes(4))


def _metadata_not_a_dict(path: Path, good: Path, trained: TrainedRun) -> None:
    _raw(path, {"__metadata__": 5})


def _config_not_a_string(path: Path, good: Path, trained: TrainedRun) -> None:
    _raw(path, {"__metadata__": {checkpoint.CONFIG_KEY: 5}})


def _meta_not_an_object(path: Path, good: Path, trained: TrainedRun) -> None:
    metadata = {checkpoint.CONFIG_KEY: trained.config.to_json(), checkpoint.META_KEY: "[1, 2]"}
    save_file(_tensors(trained), str(path), metadata=metadata)


def _giant_config(path: Path, good: Path, trained: TrainedRun) -> None:
    # A few-kB file whose config claims a million experts: refused before any allocation.
    config = {**trained.config.to_dict(), "num_clusters": 10**6}
    save_file(_tensors(trained), str(path), metadata=_meta(json.dumps(config)))


def _meta_train_not_an_object(path: Path, good: Path, trained: TrainedRun) -> None:
    meta = '{"dataset": "digits", "train": [1, 2]}'
    metadata = {checkpoint.CONFIG_KEY: trained.config.to_json(), checkpoint.META_KEY: meta}
    save_file(_tensors(trained), str(path), metadata=metadata)


BAD_FILES: dict[str, tuple[Callable, str]] = {
    "pickle": (_pickle_file, "not a safetensors file"),
    "torch_zip": (_torch_zip_file, "not a safetensors file"),
    "torch_legacy": (_torch_legacy_file, "not a safetensors file"),
    "truncated_half": (_truncated_half, "truncated"),
    "truncated_in_header": (_truncated_in_header, "not a safetensors file"),
    "huge_header": (_huge_header, f"claims {2**60} bytes"),
    "empty": (_empty, "too short"),
    "garbage_header": (_garbage_header, "not valid JSON"),
    "no_config": (_no_config, "no Mixture Lab config"),
    "unknown_type": (_unknown_type, "unknown model type 'transformer_xl'"),
    "bad_config_value": (_bad_config_value, "latent_dim"),
    "wrong_shapes": (_wrong_shapes, "shape"),
    "missing_tensor": (_missing_tensor, "gate.net.0.weight"),
    "nan_weights": (_nan_weights, "NaN or Inf"),
    "inf_weights": (_inf_weights, "NaN or Inf"),
    "offsets_not_numbers": (_offsets_not_numbers, "no valid data offsets"),
    "no_shape": (_no_shape, "no valid shape"),
    "metadata_not_a_dict": (_metadata_not_a_dict, "no Mixture Lab config"),
    "config_not_a_string": (_config_not_a_string, "not valid JSON"),
    "meta_not_an_object": (_meta_not_an_object, "not a JSON object"),
    "giant_config": (_giant_config, "shape"),
    "meta_train_not_an_object": (_meta_train_not_an_object, "'train' must be a dict"),
}


HEADER_LEVEL = sorted(
    set(BAD_FILES)
    - {"unknown_type", "bad_config_value", "wrong_shapes", "missing_tensor", "giant_config"}
    - {"nan_weights", "inf_weights"}
)


@pytest.fixture(params=sorted(BAD_FILES))
def bad_file(request, trained: TrainedRun, good_file: Path, tmp_path: Path):
    make, needle = BAD_FILES[request.param]
    path = tmp_path / f"bad_{request.param}.safetensors"
    make(path, good_file, trained)
    return path, needle


def _check_one_line(message: str, path: Path, needle: str) -> None:
    """`<file name>: <reason>` on one line, the reason containing `needle`."""
    assert "\n" not in message
    name, sep, reason = message.partition(": ")
    assert (name, sep) == (path.name, ": ")
    assert needle in reason


def test_bad_file_is_refused_by_the_loader(bad_file: tuple[Path, str]) -> None:
    path, needle = bad_file
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    _check_one_line(str(info.value), path, needle)
    assert not path.with_suffix(".marker").exists()


def test_bad_file_is_refused_by_moa_eval(
    bad_file: tuple[Path, str], capsys: pytest.CaptureFixture
) -> None:
    path, needle = bad_file
    code = main(["eval", str(path), "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.endswith("\n")
    assert err.startswith("moa: error: ")
    assert "Traceback" not in err
    _check_one_line(err.removeprefix("moa: error: ").rstrip("\n"), path, needle)
    assert not path.with_suffix(".marker").exists()


def test_the_pickle_payload_is_live(tmp_path: Path) -> None:
    """Control for the tests above: loading this pickle really does create its marker."""
    marker = tmp_path / "control.marker"
    handle = pickle.loads(pickle.dumps(_Exploit(marker)))
    handle.close()
    assert marker.exists()


def test_size_limit(good_file: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    size_kib = good_file.stat().st_size / 1024
    monkeypatch.setenv("MOA_MAX_CHECKPOINT_MB", str(size_kib / 2 / 1024))  # half its size
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(good_file)
    _check_one_line(str(info.value), good_file, "size limit")
    assert main(["eval", str(good_file), "--device", "cpu"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "size limit" in err
    # Just above its size, the same file loads.
    monkeypatch.setenv("MOA_MAX_CHECKPOINT_MB", str(size_kib * 1.01 / 1024))
    assert load_checkpoint(good_file).config.num_clusters == 3


def test_size_limit_that_is_not_a_number(good_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOA_MAX_CHECKPOINT_MB", "lots")
    with pytest.raises(CheckpointError, match="MOA_MAX_CHECKPOINT_MB must be a number"):
        load_checkpoint(good_file)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.safetensors"
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    _check_one_line(str(info.value), path, "no such checkpoint file")
