"""Process-wide job manager: training jobs in worker threads, a concurrency limit, a queue.

Workers never call Streamlit; they write into each job's thread-safe `JobState`, which
the app's fragments poll. One GPU shared by a classroom: jobs beyond `max_running` wait
in FIFO order and know their queue position; a job that runs out of memory fails alone.
"""

from __future__ import annotations

import itertools
import os
import threading
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from moa_core.data import DatasetError
from moa_core.device import DeviceError
from moa_core.models import ConfigError
from moa_core.train.control import TrainingControl
from moa_core.train.pretraining import PipelineStopped
from moa_core.train.run import TrainedRun, train_model
from moa_core.train.trainer import Callback, TrainEvent

USER_ERRORS = (ConfigError, DatasetError, DeviceError)


# Work other than one `train_model` call (a pretraining step): it gets the job's event
# callback and control, trains through them, and returns the job's result.
Work = Callable[[Callback, TrainingControl], Any]


@dataclass
class JobSpec:
    model_type: str = ""
    dataset: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    work: Work | None = None


class JobState:
    """Metrics and snapshots a worker publishes and a UI reads, guarded by one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.status = "queued"
        self.message = ""
        self.losses: list[tuple[int, float]] = []
        self.epochs: list[dict] = []
        self.snapshot: dict | None = None
        self.lr_changes: list[tuple[int, float]] = []  # (last step before it, new base rate)
        self.run: TrainedRun | None = None
        self.result: Any = None  # what a `JobSpec.work` returned

    def on_event(self, event: TrainEvent) -> None:
        with self._lock:
            if event.kind == "batch":
                self.losses.append((event.step, event.loss))
            elif event.kind == "epoch":
                self.epochs.append({"epoch": event.epoch, "step": event.step, **event.metrics})
                self.snapshot = event.snapshot
            if event.message:
                self.message = event.message

    def note_learning_rate(self, lr: float) -> None:
        """Record a mid-run learning-rate change at the current step, so the loss chart can
        mark where it took effect (the trainer applies it from the next batch)."""
        with self._lock:
            self.lr_changes.append((self.losses[-1][0] if self.losses else 0, float(lr)))

    def set_status(self, status: str, message: str = "") -> None:
        with self._lock:
            self.status = status
            if message:
                self.message = message

    def view(self) -> dict[str, Any]:
        """A consistent copy for drawing, taken under the lock."""
        with self._lock:
            return {
                "status": self.status,
                "message": self.message,
                "losses": list(self.losses),
                "epochs": list(self.epochs),
                "snapshot": self.snapshot,
                "lr_changes": list(self.lr_changes),
            }


class Job:
    def __init__(self, job_id: int, spec: JobSpec) -> None:
        self.id = job_id
        self.spec = spec
        self.control = TrainingControl()
        self.state = JobState()
        self.thread: threading.Thread | None = None

    @property
    def status(self) -> str:
        return self.state.status

    @property
    def done(self) -> bool:
        return self.state.status in ("finished", "stopped", "failed")

    def wait(self, timeout: float | None = None) -> bool:
        if self.thread is None:
            return False
        self.thread.join(timeout)
        return not self.thread.is_alive()


class JobManager:
    """Starts up to `max_running` jobs at once; the rest wait in a queue."""

    def __init__(self, max_running: int = 2) -> None:
        self.max_running = max_running
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._queue: deque[Job] = deque()
        self._running: set[int] = set()
        self.jobs: dict[int, Job] = {}

    def submit(self, spec: JobSpec) -> Job:
        job = Job(next(self._ids), spec)
        with self._lock:
            self.jobs[job.id] = job
            self._queue.append(job)
        self._start_waiting()
        return job

    def queue_position(self, job: Job) -> int | None:
        """1 for the next job to start; None once it runs or is done."""
        with self._lock:
            for position, waiting in enumerate(self._queue, start=1):
                if waiting is job:
                    return position
        return None

    def cancel(self, job: Job) -> None:
        """Stop a running job, or drop a queued one before it starts."""
        with self._lock:
            if job in self._queue:
                self._queue.remove(job)
                job.state.set_status("stopped", "cancelled before it started")
                return
        job.control.stop()

    def _start_waiting(self) -> None:
        with self._lock:
            while self._queue and len(self._running) < self.max_running:
                job = self._queue.popleft()
                self._running.add(job.id)
                job.state.set_status("running")
                job.thread = threading.Thread(
                    target=self._work, args=(job,), name=f"moa-job-{job.id}", daemon=True
                )
                job.thread.start()

    def _work(self, job: Job) -> None:
        spec = job.spec
        try:
            if spec.work is not None:
                job.state.result = spec.work(job.state.on_event, job.control)
                job.state.set_status("finished")
            else:
                run = train_model(
                    spec.model_type, spec.dataset, spec.overrides, [job.state.on_event], job.control
                )
                job.state.run = run
                job.state.set_status(run.result.status, run.result.message)
        except PipelineStopped as err:
            job.state.set_status("stopped" if job.control.stopped else "failed", str(err))
        except USER_ERRORS as err:
            job.state.set_status("failed", str(err))
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            job.state.set_status("failed", "out of GPU memory: try a smaller batch size or M")
        except Exception as err:  # a worker must never die silently
            traceback.print_exc()
            job.state.set_status("failed", f"{type(err).__name__}: {err}")
        finally:
            with self._lock:
                self._running.discard(job.id)
            self._start_waiting()


_MANAGER: JobManager | None = None
_MANAGER_LOCK = threading.Lock()


def job_manager() -> JobManager:
    """The one manager of this process (Streamlit reruns share it)."""
    global _MANAGER
    with _MANAGER_LOCK:
        if _MANAGER is None:
            _MANAGER = JobManager(int(os.environ.get("MOA_MAX_JOBS", "2")))
        return _MANAGER
