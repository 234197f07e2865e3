"""Process-wide job manager: training jobs in worker threads, a concurrency limit, a queue.

Workers never call Streamlit; they write into each job's thread-safe `JobState`, which
the app's fragments poll. One GPU shared by a classroom: every job belongs to the browser
that started it; jobs beyond `max_running` wait in a queue that is fair between browsers
and know their position and wait; each browser has a cap; a janitor frees what nobody can
see any more; a job that runs out of memory fails alone.
"""

from __future__ import annotations

import ctypes
import gc
import itertools
import threading
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from moa_core.data import DatasetError
from moa_core.device import DeviceError
from moa_core.limits import env_number
from moa_core.models import ConfigError
from moa_core.train.control import TrainingControl
from moa_core.train.presence import BrowserPresence
from moa_core.train.pretraining import PipelineStopped
from moa_core.train.queue_wait import queue_wait
from moa_core.train.run import TrainedRun, train_model
from moa_core.train.trainer import Callback, SnapshotHook, TrainEvent

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
    # The page's live figures, computed from the model at every snapshot (`SnapshotHook`).
    snapshot_hooks: tuple[SnapshotHook, ...] = ()


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
        self.total_steps: int | None = None  # of the training under way, when it says

    def on_event(self, event: TrainEvent) -> None:
        with self._lock:
            if event.kind == "batch":
                self.losses.append((event.step, event.loss))
            elif event.kind == "epoch":
                self.epochs.append({"epoch": event.epoch, "step": event.step, **event.metrics})
                self.snapshot = event.snapshot
            elif event.kind == "started":  # the initial weights: a figure before epoch 1
                self.snapshot = event.snapshot
                self.total_steps = (event.metrics or {}).get("total_steps")
            if event.message:
                self.message = event.message

    def note_learning_rate(self, lr: float) -> None:
        """Record a mid-run learning-rate change at the current step, so the loss chart can
        mark where it took effect (the trainer applies it from the next batch)."""
        with self._lock:
            self.lr_changes.append((self.losses[-1][0] if self.losses else 0, float(lr)))

    def fraction(self) -> float | None:
        """Share of the current training's steps done (None when it has not said)."""
        with self._lock:
            if not self.total_steps:
                return None
            step = self.losses[-1][0] if self.losses else 0
            return min(1.0, step / self.total_steps)

    def release(self) -> None:
        """Let go of the model, data and pictures: the job is being forgotten."""
        with self._lock:
            self.run = None
            self.result = None
            self.snapshot = None

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


class JobLimitError(ValueError):
    """Why a browser may not start more jobs now, in one line."""


class NotYourJob(PermissionError):
    """A browser tried to steer a job another browser started."""


class Job:
    """One unit of work, owned by the browser that started it (`owner`; "" for the CLI and
    tests). `tag` names the page (and step) it serves, `context` is what that page needs to
    recognise it again after a reload."""

    def __init__(
        self, job_id: int, spec: JobSpec, owner: str = "", tag: str = "", context: Any = None
    ) -> None:
        self.id = job_id
        self.spec = spec
        self.owner = owner
        self.tag = tag
        self.context = context
        self.control = TrainingControl()
        self.state = JobState()
        self.thread: threading.Thread | None = None
        self.submitted_at = time.monotonic()
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.group = job_id  # the first id of the jobs submitted with it (a comparison)
        self.saved = False  # kept past the finished-job TTL while its browser is around
        self.dismissed = False  # the page's Reset: no longer shown, dropped once done

    @property
    def status(self) -> str:
        return self.state.status

    @property
    def done(self) -> bool:
        return self.state.status in ("finished", "stopped", "failed")

    @property
    def active(self) -> bool:
        return not self.done

    def wait(self, timeout: float | None = None) -> bool:
        if self.thread is None:
            return False
        self.thread.join(timeout)
        return not self.thread.is_alive()


@dataclass(frozen=True)
class JobLimits:
    """How a shared server rations its jobs; each is an environment variable (README)."""

    max_running: int = 2  # MOA_MAX_JOBS: jobs training at once, for everyone
    per_browser: int = 4  # MOA_MAX_JOBS_PER_BROWSER: queued or running jobs of one browser
    browser_ttl: float = 300.0  # MOA_BROWSER_TTL: s a browser may be gone before its jobs end
    finished_ttl: float = 1800.0  # MOA_FINISHED_TTL: s a finished, unsaved job is kept

    @classmethod
    def from_env(cls) -> JobLimits:
        limits = cls(
            max_running=int(env_number("MOA_MAX_JOBS", cls.max_running)),
            per_browser=int(env_number("MOA_MAX_JOBS_PER_BROWSER", cls.per_browser)),
            browser_ttl=env_number("MOA_BROWSER_TTL", cls.browser_ttl),
            finished_ttl=env_number("MOA_FINISHED_TTL", cls.finished_ttl),
        )
        if limits.max_running < 1:
            raise ValueError("MOA_MAX_JOBS must be 1 or more: with 0 no job would ever start")
        return limits

    @property
    def sweep_seconds(self) -> float:
        """How often the janitor looks: often enough that a TTL is kept within a quarter."""
        return max(0.5, min(10.0, self.browser_ttl / 4, self.finished_ttl / 4))


class JobManager:
    """Starts up to `limits.max_running` jobs at once; the rest wait in a fair queue.

    Fair: the next job to start is the waiting one whose browser has had the fewest jobs
    started (ties: the earliest), so a browser's second job never starts before every other
    waiting browser's first. A janitor (`sweep`) ends the jobs of browsers gone for longer than
    `browser_ttl` and drops finished jobs after `finished_ttl`, freeing their models.
    """

    def __init__(self, max_running: int = 2, limits: JobLimits | None = None) -> None:
        self.limits = limits or JobLimits(max_running=max_running)
        self.presence = BrowserPresence()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._queue: list[Job] = []
        self._running: set[int] = set()
        self.jobs: dict[int, Job] = {}
        self._durations: deque[float] = deque(maxlen=20)  # recent jobs' run times, for waits
        self._started: Counter[str] = Counter()  # jobs each browser has had started

    @property
    def max_running(self) -> int:
        return self.limits.max_running

    def submit(self, spec: JobSpec, owner: str = "", tag: str = "", context: Any = None) -> Job:
        return self.submit_group([spec], owner, tag, context)[0]

    def submit_group(
        self, specs: list[JobSpec], owner: str = "", tag: str = "", context: Any = None
    ) -> list[Job]:
        """Queue `specs` together (a comparison is all or nothing) for `owner`; raises
        `JobLimitError` when that would put the browser past its cap."""
        with self._lock:
            if owner:
                active = sum(1 for job in self.jobs.values() if job.owner == owner and job.active)
                if active + len(specs) > self.limits.per_browser:
                    raise JobLimitError(
                        f"this browser already has {active} job(s) queued or running, and "
                        f"{self.limits.per_browser} is the most one browser may have "
                        "(MOA_MAX_JOBS_PER_BROWSER): stop one or wait for it to finish"
                    )
            jobs = [Job(next(self._ids), spec, owner, tag, context) for spec in specs]
            for job in jobs:
                job.group = jobs[0].id
                self.jobs[job.id] = job
                self._queue.append(job)
        self._start_waiting()
        return jobs

    def _fair_queue(self) -> list[Job]:
        """The waiting jobs in the order they will start (call under the lock): a job's
        turn is how many jobs its browser has started before it, counting its own waiting
        ones ahead of it; the CLI's and the tests' jobs (no browser) go first come, first
        served."""
        ahead: Counter[str] = Counter()
        turns = []
        for job in self._queue:  # submission order
            turn = self._started[job.owner] + ahead[job.owner] if job.owner else 0
            ahead[job.owner] += 1
            turns.append((turn, job.id, job))
        return [job for _, _, job in sorted(turns, key=lambda t: t[:2])]

    def queue_position(self, job: Job) -> int | None:
        """1 for the next job to start; None once it runs or is done."""
        with self._lock:
            for position, waiting in enumerate(self._fair_queue(), start=1):
                if waiting is job:
                    return position
        return None

    def queue_length(self) -> int:
        with self._lock:
            return len(self._queue)

    def estimated_wait(self, job: Job) -> float | None:
        """Seconds until `job` starts, from the running jobs' progress and the recent jobs'
        durations; None while there is nothing to go by yet (or it is not waiting)."""
        with self._lock:
            order = self._fair_queue()
            if job not in order:
                return None
            now = time.monotonic()
            remaining = [_remaining(self.jobs[i], now) for i in self._running if i in self.jobs]
            typical = sum(self._durations) / len(self._durations) if self._durations else None
        return queue_wait(remaining, order.index(job), self.limits.max_running, typical)

    def all_jobs(self) -> list[Job]:
        """Every job, oldest first: a copy taken under the lock (the janitor and other
        browsers change the table meanwhile)."""
        with self._lock:
            return list(self.jobs.values())

    def owned(self, owner: str, tag: str | None = None, dismissed: bool = False) -> list[Job]:
        """`owner`'s jobs (for `tag`, if given), oldest first; Reset ones only if asked."""
        return [
            job
            for job in self.all_jobs()
            if job.owner == owner
            and (tag is None or job.tag == tag)
            and (dismissed or not job.dismissed)
        ]

    def check_owner(self, job: Job, owner: str | None) -> None:
        """Refuse to let `owner` steer `job` unless it started it (None: the teacher)."""
        if owner is not None and job.owner != owner:
            raise NotYourJob(f"job {job.id} belongs to another browser")

    def cancel(self, job: Job, by: str | None = None) -> None:
        """Stop a running job, or drop a queued one before it starts. `by`: the browser
        asking (None: the server itself or the teacher)."""
        self.check_owner(job, by)
        with self._lock:
            if job in self._queue:
                self._queue.remove(job)
                job.state.set_status("stopped", "cancelled before it started")
                job.ended_at = time.monotonic()
                return
        job.control.stop()

    def steer(self, job: Job, action: str, by: str | None = None) -> None:
        """Pause, resume or step `job`, if `by` may."""
        if action not in ("pause", "resume", "step"):
            raise ValueError(f"unknown action {action!r}")
        self.check_owner(job, by)
        getattr(job.control, action)()

    def dismiss(self, jobs: list[Job], by: str | None = None) -> None:
        """The page's Reset: stop them, hide them, drop them from memory once done."""
        for job in jobs:
            self.cancel(job, by)
            job.dismissed = True

    def mark_saved(self, job: Job, by: str | None = None) -> None:
        self.check_owner(job, by)
        job.saved = True

    def sweep(self, now: float | None = None) -> list[int]:
        """End the jobs of browsers gone past the TTL; drop the jobs nobody can see any more
        (a gone browser's, a dismissed one's, finished ones past their TTL unless saved).
        Returns the ids dropped."""
        now = time.monotonic() if now is None else now
        gone = self.presence.gone(now, self.limits.browser_ttl)
        for job in [job for job in list(self.jobs.values()) if job.owner in gone and job.active]:
            self.cancel(job)
        dropped = []
        with self._lock:
            for job in list(self.jobs.values()):
                if job.done and job.id not in self._running and self._expired(job, gone, now):
                    del self.jobs[job.id]
                    job.state.release()
                    dropped.append(job.id)
            owners = {job.owner for job in self.jobs.values()}
        for owner in gone - owners:
            self.presence.forget(owner)
            with self._lock:
                self._started.pop(owner, None)
        if dropped:
            release_freed_memory()
        return dropped

    def _expired(self, job: Job, gone: set[str], now: float) -> bool:
        """Whether nobody can see `job` any more (call under the lock)."""
        if job.owner in gone or job.dismissed:
            return True
        if job.saved or self._on_screen(job):
            return False
        ended = job.ended_at if job.ended_at is not None else now
        return now - ended > self.limits.finished_ttl

    def _on_screen(self, job: Job) -> bool:
        """Whether `job` is among the last its browser started on its page, the browser being
        here (or away for less than its TTL): what a student looks at, or will see again
        after a reload, is never dropped under them."""
        if not job.owner or not self.presence.known(job.owner):
            return False
        newest = max(
            (j for j in self.jobs.values() if (j.owner, j.tag) == (job.owner, job.tag)),
            key=lambda j: j.id,
        )
        return job.group == newest.group

    def start_janitor(self) -> threading.Thread:
        """A daemon thread that sweeps every `limits.sweep_seconds`."""

        def loop() -> None:
            while True:
                time.sleep(self.limits.sweep_seconds)
                try:
                    self.sweep()
                except Exception:  # the janitor must outlive any one bad sweep
                    traceback.print_exc()

        thread = threading.Thread(target=loop, name="moa-job-janitor", daemon=True)
        thread.start()
        return thread

    def _start_waiting(self) -> None:
        with self._lock:
            while self._queue and len(self._running) < self.limits.max_running:
                job = self._fair_queue()[0]
                self._queue.remove(job)
                self._running.add(job.id)
                self._started[job.owner] += 1
                job.started_at = time.monotonic()
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
                    spec.model_type,
                    spec.dataset,
                    spec.overrides,
                    [job.state.on_event],
                    job.control,
                    snapshot_hooks=spec.snapshot_hooks,
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
            job.ended_at = time.monotonic()
            with self._lock:
                self._running.discard(job.id)
                if job.status == "finished" and job.started_at is not None:
                    self._durations.append(job.ended_at - job.started_at)
            self._start_waiting()


def release_freed_memory() -> None:
    """Hand memory freed by dropped jobs back to the system: CUDA's cached blocks, and the
    C heap's free pages (glibc keeps them otherwise, and a class's server would only grow)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: its allocator decides
        pass


def _remaining(job: Job, now: float) -> float | None:
    """A running job's seconds left, from its elapsed time and the share of steps done."""
    fraction = job.state.fraction()
    if job.started_at is None or fraction is None or fraction <= 0.05:
        return None
    elapsed = now - job.started_at
    return elapsed * (1.0 - fraction) / fraction


_MANAGER: JobManager | None = None
_MANAGER_LOCK = threading.Lock()


def job_manager() -> JobManager:
    """The one manager of this process (Streamlit reruns share it)."""
    global _MANAGER
    with _MANAGER_LOCK:
        if _MANAGER is None:
            _MANAGER = JobManager(limits=JobLimits.from_env())
            _MANAGER.start_janitor()
        return _MANAGER
