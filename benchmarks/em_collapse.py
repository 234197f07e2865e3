"""Paper 004, Fig. 5 / Table 1: neural EM on 2-D points with and without relevance-score
normalization: clusters used, NMI and the mean density per cluster (≈ 0.5 when normalized)."""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import emit_cases, mean_std, progress, run_cases
from moa_core.analysis.density import mean_density
from moa_core.train.run import train_model

SEEDS = (0, 1, 2)
CASES = (("digits2d", {"epochs": 60}), ("mnist2d", {"epochs": 20}))


def run_case(spec: str, settings: dict) -> dict:
    summary = {}
    for normalize in (True, False):
        nmi, used, spread = [], [], []
        for seed in SEEDS:
            run = train_model("neural_em", spec, {**settings, "normalize": normalize, "seed": seed})
            metrics = run.result.metrics
            nmi.append(metrics["nmi"])
            used.append(metrics["clusters_used"])
            means = mean_density(run.model, run.dataset.x, seed)
            spread.append(float(np.abs(means - 0.5).max()))
            progress(
                f"{spec} normalize={normalize} seed {seed}: NMI {metrics['nmi']:.3f}, "
                f"{metrics['clusters_used']} clusters used"
            )
        key = "normalized" if normalize else "unnormalized"
        summary[key] = {
            "nmi": mean_std(nmi),
            "clusters_used": used,
            "max_abs_mean_density_minus_half": mean_std(spread),
        }
    return summary


def run() -> dict:
    start = time.perf_counter()
    results, skipped = run_cases(CASES, run_case)
    ratio = np.mean(
        [
            r["normalized"]["nmi"]["mean"] / max(r["unnormalized"]["nmi"]["mean"], 1e-3)
            for r in results.values()
        ]
    )
    return emit_cases(
        "em_collapse",
        start,
        "the same model without relevance-score normalization",
        ratio,
        results,
        skipped,
    )
