"""The files another process follows a training by (`moa train --history`): each epoch's row
as it ends, and the latest step, rewritten at most once every PROGRESS_SECONDS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moa_core.train import history_file
from moa_core.train.history_file import HistoryWriter, read_history, read_progress
from moa_core.train.trainer import TrainEvent


def test_epochs_are_appended_and_the_progress_is_throttled_but_exact_at_each_epoch_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history_file, "PROGRESS_SECONDS", 3600.0)
    path = tmp_path / "run" / "history.jsonl"
    write = HistoryWriter(path)
    assert read_history(path) == [] and read_progress(path) is None
    write(TrainEvent("started", 0, 0, metrics={"total_steps": 4}))
    write(TrainEvent("batch", 1, 1, loss=3.0))
    write(TrainEvent("batch", 1, 2, loss=2.0))  # within the hour: not written
    assert read_progress(path) == {"epoch": 1, "step": 1, "total_steps": 4, "loss": 3.0}
    write(TrainEvent("epoch", 1, 2, loss=2.5, metrics={"nmi": 0.5}))
    assert read_progress(path) == {"epoch": 1, "step": 2, "total_steps": 4, "loss": 2.5}
    assert read_history(path) == [{"epoch": 1, "train_loss": 2.5, "metrics": {"nmi": 0.5}}]
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "history.jsonl",
        "history.progress.json",
    ]


def test_a_half_written_last_line_is_left_for_the_next_read(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    row = {"epoch": 1, "train_loss": 1.0, "metrics": {}}
    path.write_text(json.dumps(row) + "\n" + '{"epoch": 2, "tra')
    assert read_history(path) == [row]


def test_a_new_writer_clears_an_earlier_runs_progress(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    first = HistoryWriter(path)
    first(TrainEvent("batch", 1, 1, loss=1.0))
    assert read_progress(path) is not None
    HistoryWriter(path)
    assert read_progress(path) is None and read_history(path) == []
