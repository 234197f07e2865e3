"""Shared timing and reporting helpers for the benchmarks."""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable

import torch

from moa_core.device import describe_device, resolve_device
from moa_core.metrics import mean_std  # noqa: F401  (the benchmarks' import)


def device() -> torch.device:
    return resolve_device("auto")


def device_label() -> str:
    return describe_device(device())


def seconds_per_call(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    """Median wall time of `fn` over `repeats` calls, after warm-up, synchronizing the GPU."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync()
        start = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def progress(message: str) -> None:
    """Progress goes to stderr so stdout stays one JSON line per benchmark."""
    print(message, file=sys.stderr, flush=True)


def emit(record: dict) -> dict:
    print(json.dumps(record), flush=True)
    return record


def emit_cases(
    name: str, start: float, baseline: str, ratio: float, results: dict, skipped: dict
) -> dict:
    """The one JSON line of a benchmark that ran `run_cases`: figures per case, the ratio
    against its in-run `baseline`, and the cases skipped for missing data."""
    return emit(
        {
            "name": name,
            "device": device_label(),
            "seconds": round(time.perf_counter() - start, 1),
            "baseline": baseline,
            "ratio": round(float(ratio), 4),
            "results": results,
            "skipped": skipped,
        }
    )


def run_cases(cases, run_case: Callable[[str, dict], dict], gpu_cases=None) -> tuple[dict, dict]:
    """Run every (dataset spec, settings) case, or `gpu_cases` when there are some and a GPU;
    a case whose data is absent is skipped with its one-line reason instead of failing."""
    from moa_core.data import DatasetError

    if gpu_cases is not None and device().type == "cuda":
        cases = gpu_cases
    results, skipped = {}, {}
    for spec, settings in cases:
        try:
            results[spec] = {"settings": settings, **run_case(spec, settings)}
        except DatasetError as err:
            skipped[spec] = str(err)
    return results, skipped
