"""Issue 12: the run registry survives `kill -9` mid-save and foreign files in its folder.

A run's name only appears with the whole file behind it, so a save killed at any moment
leaves the registry listing complete runs only (a hidden temp file at most, removed by a later
save once stale); files that are not runs are listed as skipped, one line each, and break
neither the listing, `moa list`, nor a page.
"""

from __future__ import annotations

import os
import pickle
import random
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from tiny import TINY_ROUTING

from moa_core.checkpoint import (
    STALE_TEMP_SECONDS,
    RegistryFullError,
    list_runs,
    load_checkpoint,
    save_run,
    scan_runs,
)
from moa_core.cli import main
from moa_core.models import build_model, config_from_dict
from moa_core.train.run import TrainedRun, train_model

ROOT = Path(__file__).resolve().parent.parent
ROUTING_PAGE = str(ROOT / "app_pages" / "routing.py")
ROUNDS = 5

# Imports torch once and builds a ~20 MB model (each save takes tens of milliseconds, so most
# kills land inside one); then for each "go" line on stdin forks a worker that saves runs in a
# loop until killed, and prints the worker's pid (and "reaped" once it is gone). Forking spares
# each round the interpreter's start-up and imports.
SAVER = """
import os, sys
sys.path.insert(0, sys.argv[1])
import torch
torch.set_num_threads(1)
from moa_core.checkpoint import save_run
from moa_core.models import build_model, config_from_dict

config = config_from_dict({"model_type": "multipath_cc", "dense_units": 1500})
model = build_model(config)
print("ready", flush=True)
for _ in sys.stdin:
    pid = os.fork()
    if pid == 0:
        try:
            while True:
                save_run(model, config, {"dataset": "digits"}, sys.argv[2])
        finally:
            os._exit(1)
    print(pid, flush=True)
    os.waitpid(pid, 0)
    print("reaped", flush=True)
"""


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    monkeypatch.setenv("MOA_RUNS_DIR", str(runs))
    for name in ("MOA_RUNS_MAX_COUNT", "MOA_RUNS_MAX_MB", "MOA_MAX_CHECKPOINT_MB"):
        monkeypatch.delenv(name, raising=False)
    return runs


def _line(process: subprocess.Popen, timeout: float = 60) -> str:
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, "the saver process said nothing"
    line = process.stdout.readline()
    assert line, f"the saver process ended: {process.stderr.read()}"
    return line.strip()


def _runs_on_disk(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*.safetensors")}


def test_kill_9_mid_save_leaves_only_whole_runs(isolated: Path) -> None:
    isolated.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-c", SAVER, str(ROOT), str(isolated)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    rng = random.Random(0)
    listed_before: set[str] = set()
    try:
        assert _line(process, 120) == "ready"
        for _ in range(ROUNDS):
            before = _runs_on_disk(isolated)
            process.stdin.write("go\n")
            process.stdin.flush()
            worker = int(_line(process))
            deadline = time.monotonic() + 30
            while not _runs_on_disk(isolated) - before:  # at least one new run appeared
                assert time.monotonic() < deadline, "no run was saved"
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.3))  # now kill it somewhere in a later save
            os.kill(worker, signal.SIGKILL)
            assert _line(process) == "reaped"  # dead, not dying
            # A restart's first look: only whole runs, none lost from before the kill.
            listing = scan_runs(isolated)
            names = {run.path.name for run in listing.runs}
            assert listing.skipped == []
            assert names == _runs_on_disk(isolated)
            assert listed_before <= names
            listed_before = names
        process.stdin.close()
        assert process.wait(30) == 0
        assert len(listed_before) >= ROUNDS
        for run in list_runs(isolated):  # every listed run loads completely
            loaded = load_checkpoint(run.path)
            assert loaded.config.dense_units == 1500
        # Whatever the kills left behind is a hidden temp file (ours, or the `.tmpXXXXXX` of
        # safetensors' own write), never a run; the next save removes those gone stale.
        leftovers = [n for n in os.listdir(isolated) if not n.endswith(".safetensors")]
        assert all(n.startswith((".tmp", ".multipath_cc-")) for n in leftovers), leftovers
        assert all(n.startswith(".tmp") or n.endswith(".tmp") for n in leftovers), leftovers
        old = time.time() - STALE_TEMP_SECONDS - 60
        for name in leftovers:
            os.utime(isolated / name, (old, old))
        model, config = _tiny_model()
        last = save_run(model, config, {"dataset": "digits"}, isolated)
        assert sorted(os.listdir(isolated)) == sorted(listed_before | {last.name})
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        shutil.rmtree(isolated, ignore_errors=True)  # a few hundred MB: don't keep them


def _tiny_model() -> tuple:
    config = config_from_dict({"model_type": "multipath_cc", **TINY_ROUTING})
    return build_model(config), config


def test_temp_files_of_killed_saves_are_hidden_counted_and_cleaned(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, config = _tiny_model()
    first = save_run(model, config, {"dataset": "digits"})
    size = first.stat().st_size
    # What `kill -9` leaves: a half-written temp file, and one killed after its link.
    fresh = isolated / f".{first.stem}-x.safetensors.abc123.tmp"
    fresh.write_bytes(bytes(size))
    linked = isolated / f".{first.name}.def456.tmp"
    os.link(first, linked)
    theirs = isolated / ".tmpQwErTy"  # safetensors' own temp file, from a day ago
    theirs.write_bytes(bytes(100))
    os.utime(theirs, (time.time() - 86400, time.time() - 86400))
    assert [r.path for r in scan_runs().runs] == [first] and scan_runs().skipped == []
    # A fresh temp file still counts toward the size limit: no room for a second run.
    monkeypatch.setenv("MOA_RUNS_MAX_MB", str(size * 2.5 / 2**20))
    with pytest.raises(RegistryFullError, match="MOA_RUNS_MAX_MB"):
        save_run(model, config, {"dataset": "digits"})
    assert not linked.exists()  # the linked one is a finished run's twin: removed at once
    assert not theirs.exists()  # stale
    # Once stale, the next save removes it, and the run fits.
    old = time.time() - STALE_TEMP_SECONDS - 60
    os.utime(fresh, (old, old))
    second = save_run(model, config, {"dataset": "digits"})
    assert sorted(os.listdir(isolated)) == sorted([first.name, second.name])


@pytest.fixture(scope="module")
def singlepath_run() -> TrainedRun:
    settings = {**TINY_ROUTING, "epochs": 1, "max_samples": 100, "device": "cpu"}
    return train_model("singlepath", "digits", settings)


def _foreign_registry(folder: Path, run: TrainedRun) -> list[Path]:
    """Two good runs, then a note, a truncated run, a pickle, an empty file and a folder."""
    good = [save_run(run.model, run.config, run.checkpoint_meta(), folder) for _ in range(2)]
    (folder / "notes.txt").write_text("lesson plan")
    (folder / "broken.safetensors").write_bytes(good[0].read_bytes()[:-500])
    (folder / "evil.safetensors").write_bytes(pickle.dumps({"weights": list(range(10))}))
    (folder / "empty.safetensors").write_bytes(b"")
    (folder / "archive").mkdir()
    (folder / "archive" / "old.safetensors").write_bytes(good[1].read_bytes())
    return good


SKIPPED = [
    "skipped: archive/ is a folder, not a run",
    "skipped: broken.safetensors: truncated or padded",
    "skipped: empty.safetensors: too short to be a safetensors file",
    "skipped: evil.safetensors: not a safetensors file",
    "skipped: notes.txt is not a .safetensors run",
]


def test_foreign_files_are_skipped_with_one_line_each(
    isolated: Path, singlepath_run: TrainedRun, capsys: pytest.CaptureFixture
) -> None:
    good = _foreign_registry(isolated, singlepath_run)
    listing = scan_runs()
    assert {r.path for r in listing.runs} == set(good)
    assert len(listing.skipped) == len(SKIPPED)
    for line, start in zip(listing.skipped, SKIPPED, strict=True):
        assert line.startswith(start) and "\n" not in line, line
    assert {r.path for r in list_runs()} == set(good)
    # `moa list`: the runs on stdout, the skipped lines on stderr.
    assert main(["list"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 2
    assert err.splitlines() == [f"moa: {line}" for line in listing.skipped]


def test_a_page_lists_the_good_runs_and_says_what_it_skipped(
    isolated: Path, singlepath_run: TrainedRun
) -> None:
    good = _foreign_registry(isolated, singlepath_run)
    at = AppTest.from_file(ROUTING_PAGE, default_timeout=120)
    at.query_params["run"] = good[0].stem  # a link to a saved run, not the gallery's default
    at.run()
    assert not at.exception, at.exception
    options = at.selectbox(key="route_run").options  # "<run id> (<model>, <dataset>…)"
    saved = [option for option in options if not option.startswith("Gallery · ")]
    assert sorted(option.split(" ")[0] for option in saved) == sorted(p.stem for p in good)
    (caption,) = [c.value for c in at.caption if c.value.startswith("Skipped")]
    assert caption.startswith("Skipped 5 files in the run folder: archive/ is a folder")
    assert "evil.safetensors: not a safetensors file" in caption and "\n" not in caption
    assert "no gates" in at.info[0].value  # the page went on with the chosen run
