"""A process's resident memory and CPU time, read from /proc (Linux), for the benchmarks
that measure the real server from outside."""

from __future__ import annotations

import os
import time
from pathlib import Path


def _children(pid: int) -> list[int]:
    """Direct child PIDs of `pid` (from /proc/PID/task/*/children)."""
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return kids


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def descendants(pid: int) -> set[int]:
    """`pid` and every process under it."""
    todo, seen = [pid], set()
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += _children(current)
    return seen


def tree_rss_mb(pid: int) -> float:
    """Resident memory of `pid` and all its descendants, in MB (MiB)."""
    return sum(rss_kb(each) for each in descendants(pid)) / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def wait_quiet(pid: int, max_seconds: float, window: float = 3.0, busy: float = 0.1) -> float:
    """Wait until the server uses under `busy` of a core over `window` seconds (its
    background warm-up done), at most `max_seconds`; returns the seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < max_seconds:
        before = cpu_seconds(pid)
        time.sleep(window)
        if (cpu_seconds(pid) - before) / window < busy:
            break
    return round(time.monotonic() - start, 1)
