"""Paper 004, Table 3 on a CPU budget: image clustering ACC/NMI of neural EM trained with the
EM loss only (Eq. 7) and with the two-fold optimization (Algorithm 1). Full MNIST only on a
GPU. The ratio is two-fold ACC over EM-only ACC (the in-run baseline), averaged over sets."""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import emit_cases, mean_std, progress, run_cases
from moa_core.train.run import train_model

SEEDS = (0, 1)
CPU_CASES = (("digits", {"epochs": 15}), ("usps", {"epochs": 10}))
GPU_CASES = (*CPU_CASES, ("mnist", {"epochs": 30}))
MODES = ("em_only", "two_fold")


def run_case(spec: str, settings: dict) -> dict:
    summary = {}
    for mode in MODES:
        acc, nmi, seconds = [], [], []
        for seed in SEEDS:
            result = train_model("neural_em", spec, {**settings, "mode": mode, "seed": seed}).result
            acc.append(result.metrics["acc"])
            nmi.append(result.metrics["nmi"])
            seconds.append(result.seconds)
            progress(
                f"{spec} {mode} seed {seed}: ACC {acc[-1]:.3f} NMI {nmi[-1]:.3f} "
                f"({result.seconds:.0f} s)"
            )
        summary[mode] = {"acc": mean_std(acc), "nmi": mean_std(nmi), "seconds": mean_std(seconds)}
    return summary


def run() -> dict:
    start = time.perf_counter()
    results, skipped = run_cases(CPU_CASES, run_case, GPU_CASES)
    ratio = np.mean(
        [r["two_fold"]["acc"]["mean"] / r["em_only"]["acc"]["mean"] for r in results.values()]
    )
    return emit_cases(
        "em_images",
        start,
        "EM-only (Eq. 7) on the same data and seeds",
        ratio,
        results,
        skipped,
    )
