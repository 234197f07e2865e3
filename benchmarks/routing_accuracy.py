"""Paper 003, Table 3.2 on a CPU budget: test accuracy of the two-path routing networks and the
single-path baseline at equal parameter count (every network's widths are scaled to the
default `multipath_cc`'s parameter count). MNIST and CIFAR-10 only on a GPU. The ratio is
multipath_cc's mean accuracy over singlepath's (the in-run baseline), averaged over sets."""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import emit_cases, mean_std, progress, run_cases
from moa_core.models.multipath import parameter_count
from moa_core.train.run import prepare, train_model

SEEDS = (0, 1, 2)
CPU_CASES = (("digits", {"epochs": 15}), ("usps", {"epochs": 15}))
GPU_CASES = (*CPU_CASES, ("mnist", {"epochs": 10}), ("cifar10", {"epochs": 30}))
# Every network gets the parameter budget of the default two-path cross-connection network;
# the second row is the paper's plain routing (no gate regularization, softmax(A) gates).
MODELS = {
    "multipath_cc": ("multipath_cc", {}),
    "multipath_cc gate_reg=0": ("multipath_cc", {"gate_reg": 0.0}),
    "multipath_cp": ("multipath_cp", {"match": "multipath_cc"}),
    "singlepath": ("singlepath", {"match": "multipath_cc"}),
}


def parameters(model_type: str, spec: str, overrides: dict) -> int:
    config = prepare(model_type, spec, {**overrides, "max_samples": 2})[1]
    return parameter_count(config)  # its widths are resolved to the match already


def run_case(spec: str, settings: dict) -> dict:
    summary = {}
    for label, (model_type, overrides) in MODELS.items():
        accuracy, seconds = [], []
        for seed in SEEDS:
            run = train_model(model_type, spec, {**settings, **overrides, "seed": seed})
            accuracy.append(run.result.metrics["accuracy"])
            seconds.append(run.result.seconds)
            progress(f"{spec} {label} seed {seed}: test accuracy {accuracy[-1]:.4f}")
        summary[label] = {
            "parameters": parameters(model_type, spec, overrides),
            "accuracy": mean_std(accuracy),
            "seconds": mean_std(seconds),
        }
    return summary


def run() -> dict:
    start = time.perf_counter()
    results, skipped = run_cases(CPU_CASES, run_case, GPU_CASES)
    ratio = np.mean(
        [
            r["multipath_cc"]["accuracy"]["mean"] / r["singlepath"]["accuracy"]["mean"]
            for r in results.values()
        ]
    )
    return emit_cases(
        "routing_accuracy",
        start,
        "singlepath at the same parameter count, data and seeds",
        ratio,
        results,
        skipped,
    )
