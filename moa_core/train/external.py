"""Trainings in processes of their own: `moa train … --nproc N` started by the app, followed
through the files it writes, stopped on request. A page reload, or a restart of the app,
finds them again: each lives in a folder of its own under the run registry's hidden
`.external/` (the registry lists no hidden entry):

- `record.json`: what was started, by whom, with which process id;
- `history.jsonl`: one line per finished epoch (mean training loss, scores), written by
  rank 0 as it goes (`moa train --history`), and `history.progress.json`, its latest step;
- `log.txt`: the command's stdout and stderr; its last line is the result, with the
  checkpoint that landed in the registry like any other run.

A run is running while its process lives (the app reaps the ones it started, so a finished
one is not mistaken for a live zombie), finished once the log ends on a result line,
stopped when the page stopped it, and failed otherwise, with the log's last line as reason.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from moa_core.checkpoint import runs_dir
from moa_core.train.history_file import read_history, read_progress

FOLDER = ".external"
RECORD, HISTORY, LOG, STOPPED = "record.json", "history.jsonl", "log.txt", "stopped"


@dataclass
class ExternalRun:
    """One training in its own processes, as its folder records it."""

    id: str
    model: str
    dataset: str
    overrides: dict
    processes: int
    epochs: int
    owner: str
    pid: int
    started: float
    folder: str

    @property
    def path(self) -> Path:
        return Path(self.folder)

    def history(self) -> list[dict]:
        """Every epoch finished so far."""
        return read_history(self.path / HISTORY)

    def progress(self) -> dict | None:
        """The latest step written ({epoch, step, total_steps, loss}), if any yet."""
        return read_progress(self.path / HISTORY)

    def result(self) -> dict | None:
        """The command's result line (with the saved checkpoint), once it has finished."""
        for line in reversed(self._log_lines()):
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    return None
        return None

    def status(self) -> str:
        """running | finished | stopped | failed."""
        if _alive(self.pid):
            return "running"
        if self.result() is not None:
            return "finished"
        return "stopped" if (self.path / STOPPED).exists() else "failed"

    def problem(self) -> str:
        """The log's last line: what a failed run said last."""
        lines = [line for line in self._log_lines() if line.strip()]
        return lines[-1] if lines else "the process ended without a word"

    def _log_lines(self) -> list[str]:
        try:
            return (self.path / LOG).read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []


def launch(model: str, dataset: str, overrides: dict, processes: int, owner: str) -> ExternalRun:
    """Start `moa train` on `processes` processes (torchrun when more than one) in a session
    of its own, so it outlives the page and the app; returns its record."""
    run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    folder = runs_dir() / FOLDER / run_id
    folder.mkdir(parents=True)
    settings = [f"{key}={json.dumps(value)}" for key, value in overrides.items()]
    command = [sys.executable, "-m", "moa_core.cli", "train", model, "--dataset", dataset]
    command += ["--nproc", str(processes), "--history", str(folder / HISTORY)]
    command += ["--set", *settings] if settings else []
    with (folder / LOG).open("w") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")},
        )
    threading.Thread(target=process.wait, name=f"reap-{run_id}", daemon=True).start()
    run = ExternalRun(
        run_id,
        model,
        dataset,
        overrides,
        processes,
        int(overrides.get("epochs", 0)),
        owner,
        process.pid,
        time.time(),
        str(folder),
    )
    (folder / RECORD).write_text(json.dumps(asdict(run)))
    return run


def stop(run: ExternalRun) -> None:
    """Stop every process of the run (torchrun passes the signal on to its workers)."""
    (run.path / STOPPED).touch()
    try:
        os.killpg(run.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def external_runs(owner: str | None = None) -> list[ExternalRun]:
    """The recorded runs, newest first; only `owner`'s when given."""
    runs = []
    for record in sorted((runs_dir() / FOLDER).glob(f"*/{RECORD}"), reverse=True):
        try:
            run = ExternalRun(**json.loads(record.read_text()))
        except (OSError, json.JSONDecodeError, TypeError):
            continue
        if owner is None or run.owner == owner:
            runs.append(run)
    return runs


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process now holds the number
        return False
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A finished child nobody has reaped yet (an app restarted mid-run reaps nothing)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
