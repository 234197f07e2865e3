"""Trainings in processes of their own (`moa_core.train.external`), as the Train page starts
them: the epochs come through the history file as they end, the checkpoint lands in the run
registry, the record is found again by its owner only, and a failure says why in one line."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from moa_core.checkpoint import list_runs
from moa_core.train import external

TRAIN_PAGE = str(Path(__file__).resolve().parent.parent / "app_pages" / "train.py")
TINY = {"epochs": 2, "max_samples": 300, "batch_size": 100, "device": "cpu"}


def _wait(run: external.ExternalRun, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while run.status() == "running":
        assert time.monotonic() < deadline, (run.path / external.LOG).read_text()[-2000:]
        time.sleep(0.5)
    return run.status()


@pytest.mark.slow
def test_a_run_of_its_own_writes_its_epochs_and_lands_in_the_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOA_RUNS_DIR", str(tmp_path))
    run = external.launch("moa_plus", "digits", TINY, 1, "alice")
    assert _wait(run) == "finished", run.problem()
    history = run.history()
    assert [row["epoch"] for row in history] == [1, 2]
    assert all(row["train_loss"] > 0 and 0 <= row["metrics"]["nmi"] <= 1 for row in history)
    # 300 samples in batches of 100: 3 steps an epoch; the last progress is the last epoch's end.
    assert {k: run.progress()[k] for k in ("epoch", "step", "total_steps")} == {
        "epoch": 2,
        "step": 6,
        "total_steps": 6,
    }
    checkpoint = Path(run.result()["checkpoint"])
    assert checkpoint.parent == tmp_path
    assert [saved.run_id for saved in list_runs(tmp_path)] == [checkpoint.stem]
    assert external.external_runs("alice") == [run] and external.external_runs("bob") == []


def test_a_run_that_cannot_start_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOA_RUNS_DIR", str(tmp_path))
    run = external.launch("moa_plus", "digits", {**TINY, "batch_size": 0}, 1, "alice")
    assert _wait(run) == "failed"
    assert run.problem().startswith("moa: error: ") and "batch_size" in run.problem()
    assert run.history() == [] and run.progress() is None and list_runs(tmp_path) == []


def _finished_record(tmp_path: Path, owner: str, usage: list[float]) -> external.ExternalRun:
    """A finished big run as its folder records it: the process gone, its result line in
    the log, one epoch in its history."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    folder = tmp_path / external.FOLDER / "20261201-000000-abcdef"
    folder.mkdir(parents=True)
    run = external.ExternalRun(
        folder.name, "moa", "digits", {"epochs": 1}, 2, 1, owner, gone.pid, 0.0, str(folder)
    )
    (folder / external.RECORD).write_text(json.dumps(dataclasses.asdict(run)))
    result = {"model": "moa", "checkpoint": str(tmp_path / "moa-digits-x.safetensors")}
    (folder / external.LOG).write_text("starting\n" + json.dumps(result) + "\n")
    row = {"epoch": 1, "train_loss": 0.5, "metrics": {"nmi": 0.1, "acc": 0.2, "usage": usage}}
    (folder / external.HISTORY).write_text(json.dumps(row) + "\n")
    return run


def test_the_train_page_shows_a_finished_big_run_and_its_collapse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    from app_pages.session import BROWSER_KEY

    monkeypatch.setenv("MOA_RUNS_DIR", str(tmp_path))
    run = _finished_record(tmp_path, "alice-token", usage=[0.95, 0.05, 0.0, 0.0])
    assert run.status() == "finished"
    at = AppTest.from_file(TRAIN_PAGE, default_timeout=60)
    at.session_state[BROWSER_KEY] = "alice-token"
    at.run()
    assert not at.exception
    assert any("2 processes: finished" in m.value for m in at.markdown)
    assert any("moa-digits-x" in s.value for s in at.success)
    warnings = [w.value for w in at.warning]
    assert any(w.startswith("Collapsed: expert 1 takes 95%") for w in warnings), warnings
    keys = [chart.key for chart in at.get("plotly_chart")]
    assert f"big_loss_{run.id}" in keys and f"big_scores_{run.id}" in keys
    at.session_state[BROWSER_KEY] = "bob-token"  # another browser sees none of it
    at.run()
    assert not any("processes:" in m.value for m in at.markdown)
