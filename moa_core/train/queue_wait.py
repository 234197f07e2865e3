"""How long a queued job will wait: the queue played forward on the free slots."""

from __future__ import annotations

import heapq


def queue_wait(
    running_left: list[float | None], ahead: int, slots: int, typical: float | None
) -> float | None:
    """Seconds until the job with `ahead` jobs before it in the queue starts.

    `running_left`: the seconds each running job still needs (None: it has not said how far
    it is, so it is taken to need `typical`); `typical`: how long a job takes (recent jobs'
    mean; None: none has finished yet). Each slot frees when its job ends and then takes the
    next queued job for `typical` seconds. None when the answer depends on something not
    known yet.
    """
    if slots <= 0:
        return None
    running = [typical if left is None else left for left in running_left]
    if any(left is None for left in running) or (ahead and typical is None):
        return None
    free_at = sorted(max(0.0, left) for left in running if left is not None)[:slots]
    free_at += [0.0] * (slots - len(free_at))
    heapq.heapify(free_at)
    for _ in range(ahead):
        heapq.heappush(free_at, heapq.heappop(free_at) + typical)
    return free_at[0]
