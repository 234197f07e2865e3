"""A training's record in files another process can follow (the app follows `moa train
--history PATH`): one JSON line per finished epoch in PATH, the row a checkpoint's history
file also holds, and beside it a small progress file with the latest step, rewritten at
most once every `PROGRESS_SECONDS` so a long first epoch still shows it is moving."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from moa_core.train.trainer import TrainEvent, history_row

PROGRESS_SECONDS = 1.0


def write_history(path: Path, history: list[dict]) -> Path:
    """Each epoch's row, one JSON line each."""
    with path.open("w") as out:
        for row in history:
            out.write(json.dumps(row) + "\n")
    return path


def read_history(path: Path) -> list[dict]:
    """Every row written so far (a line still being written is left for the next read)."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    rows = []
    for line in lines:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


def progress_path(history: Path) -> Path:
    return history.with_name(history.stem + ".progress.json")


def read_progress(history: Path) -> dict | None:
    """The latest {epoch, step, total_steps, loss}; None before the first step is written."""
    try:
        return json.loads(progress_path(history).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


class HistoryWriter:
    """A Trainer callback: appends each epoch's row to `path` as the epoch ends, and keeps
    the progress file beside it current (replaced whole, so a reader never sees half)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.total_steps = 0
        self._written = float("-inf")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
        progress_path(path).unlink(missing_ok=True)

    def __call__(self, event: TrainEvent) -> None:
        if event.kind == "started":
            self.total_steps = int((event.metrics or {}).get("total_steps", 0))
        elif event.kind == "epoch":
            with self.path.open("a") as out:
                out.write(json.dumps(history_row(event.epoch, event.loss, event.metrics)) + "\n")
            self._progress(event, force=True)
        elif event.kind == "batch":
            self._progress(event)

    def _progress(self, event: TrainEvent, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._written < PROGRESS_SECONDS:
            return
        self._written = now
        progress = {"epoch": event.epoch, "step": event.step, "total_steps": self.total_steps}
        target = progress_path(self.path)
        partial = target.with_name(target.name + ".part")
        partial.write_text(json.dumps({**progress, "loss": event.loss}))
        os.replace(partial, target)
