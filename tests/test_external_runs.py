"""Trainings in processes of their own (`moa_core.train.external`), as the Train page starts
them: the epochs come through the history file as they end, the checkpoint lands in the run
registry, the record is found again by its owner only, and a failure says why in one line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from moa_core.checkpoint import list_runs
from moa_core.train import external

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
    checkpoint = Path(run.result()["checkpoint"])
    assert checkpoint.parent == tmp_path
    assert [saved.run_id for saved in list_runs(tmp_path)] == [checkpoint.stem]
    assert external.external_runs("alice") == [run] and external.external_runs("bob") == []


def test_a_run_that_cannot_start_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOA_RUNS_DIR", str(tmp_path))
    run = external.launch("moa_plus", "digits", {**TINY, "batch_size": 0}, 1, "alice")
    assert _wait(run) == "failed"
    assert run.problem().startswith("moa: error: ") and "batch_size" in run.problem()
    assert run.history() == [] and list_runs(tmp_path) == []
