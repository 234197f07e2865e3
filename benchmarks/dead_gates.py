"""Paper 003, Fig. 5.1 as a number: the share of dead gates (below 0.1 or above 0.9 for every
test image) of the routing networks trained with the neural-EM gate regularization and
without it (`gate_reg=0`, plain softmax gates). A third arm keeps the batch-normalized gates
but drops the EM loss, to show which part does the work. The ratio is regularized over
unregularized dead share (lower is better), averaged over models and sets."""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import emit_cases, mean_std, progress, run_cases
from moa_core.train.run import train_model

SEEDS = (0, 1)
CPU_CASES = (("digits", {"epochs": 15}), ("usps", {"epochs": 8}))
GPU_CASES = (*CPU_CASES, ("mnist", {"epochs": 10}))
MODELS = ("multipath_cc", "multipath_cp")
ARMS = {
    "regularized": {"gate_reg": 0.01},
    "unregularized": {"gate_reg": 0.0},
    "normalized_only": {"gate_reg": 0.0, "gate_norm": "on"},
}


def run_case(spec: str, settings: dict) -> dict:
    summary: dict = {}
    for model_type in MODELS:
        summary[model_type] = {}
        for arm, overrides in ARMS.items():
            dead, accuracy = [], []
            for seed in SEEDS:
                metrics = train_model(
                    model_type, spec, {**settings, **overrides, "seed": seed}
                ).result.metrics
                dead.append(metrics["dead_gate_fraction"])
                accuracy.append(metrics["accuracy"])
                progress(
                    f"{spec} {model_type} {arm} seed {seed}: dead {dead[-1]:.3f}, "
                    f"accuracy {accuracy[-1]:.4f}"
                )
            summary[model_type][arm] = {
                "dead_gate_fraction": mean_std(dead),
                "accuracy": mean_std(accuracy),
            }
    return summary


def run() -> dict:
    start = time.perf_counter()
    results, skipped = run_cases(CPU_CASES, run_case, GPU_CASES)
    pairs = [
        (arms["regularized"], arms["unregularized"])
        for per_model in results.values()
        for model_type, arms in per_model.items()
        if model_type in MODELS
    ]
    ratio = np.mean(
        [
            reg["dead_gate_fraction"]["mean"] / max(unreg["dead_gate_fraction"]["mean"], 1e-9)
            for reg, unreg in pairs
        ]
    )
    return emit_cases(
        "dead_gates",
        start,
        "the same network without gate regularization (gate_reg=0)",
        ratio,
        results,
        skipped,
    )
