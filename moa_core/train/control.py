"""Thread-safe controls a UI or CLI uses to steer a running Trainer from another thread."""

from __future__ import annotations

import threading


class TrainingControl:
    """Pause / resume / single-step / stop requests and a learning rate changeable mid-run.

    The Trainer checks it between batches; nothing here touches the model.
    """

    def __init__(self) -> None:
        self._running = threading.Event()
        self._running.set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pending_steps = 0
        self._lr: float | None = None
        self._speed_delay = 0.0

    def pause(self) -> None:
        with self._lock:
            self._pending_steps = 0  # a pause cancels what is left of a step
        self._running.clear()

    def resume(self) -> None:
        """Run on freely; steps still pending from `step` no longer pause it later."""
        with self._lock:
            self._pending_steps = 0
        self._running.set()

    def step(self, batches: int = 1) -> None:
        """While paused, let exactly `batches` more batches run."""
        with self._lock:
            self._pending_steps += batches
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()

    def set_learning_rate(self, lr: float) -> None:
        if not lr > 0:
            raise ValueError("learning rate must be > 0")
        with self._lock:
            self._lr = lr

    def set_delay(self, seconds: float) -> None:
        """Slow training down on purpose so a class can watch it (the speed control)."""
        self._speed_delay = max(0.0, float(seconds))

    @property
    def delay(self) -> float:
        return self._speed_delay

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def take_learning_rate(self) -> float | None:
        """The new learning rate if one was set since the last call, else None."""
        with self._lock:
            lr, self._lr = self._lr, None
        return lr

    def wait_for_turn(self) -> bool:
        """Block while paused; return False when training should stop."""
        self._running.wait()
        if self.stopped:
            return False
        with self._lock:
            if self._pending_steps > 0:
                self._pending_steps -= 1
                if self._pending_steps == 0:
                    self._running.clear()
        return True
