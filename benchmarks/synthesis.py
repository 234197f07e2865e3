"""Seconds to synthesize one maximizing image per cluster of a 16×16 neural-EM model (the
Neuron maximization page's work), pixel vs Fourier parametrization, and how far each beats
the best dataset image; and the seconds to rank the data (the page's first images).
Baseline: the pixel parametrization."""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import device_label, emit, progress
from moa_core.analysis.maximize import SynthesisSettings, maximize_units, rank_units
from moa_core.train.run import train_model

TRAIN = {"epochs": 3, "mode": "em_only", "seed": 0}


def run() -> dict:
    start = time.perf_counter()
    run_ = train_model("neural_em", "digits", TRAIN)
    x = run_.dataset.x
    began = time.perf_counter()
    rank_units(run_.model, x)
    ranking_seconds = time.perf_counter() - began
    results = {}
    for fourier in (False, True):
        began = time.perf_counter()
        report = maximize_units(run_.model, x, settings=SynthesisSettings(fourier=fourier))
        seconds = time.perf_counter() - began
        margin = report.synthesis.final_scores - report.best_dataset_scores
        name = "fourier" if fourier else "pixels"
        results[name] = {
            "seconds_all_units": round(seconds, 2),
            "seconds_per_image": round(seconds / len(report.units), 3),
            "units": len(report.units),
            "beats_best_dataset_image": int((margin > 0).sum()),
            "min_margin": round(float(margin.min()), 3),
        }
        progress(f"{name}: {seconds:.1f} s for {len(report.units)} units")
    return emit(
        {
            "name": "synthesis",
            "device": device_label(),
            "seconds": round(time.perf_counter() - start, 1),
            "baseline": "pixel parametrization",
            "ratio": round(
                results["fourier"]["seconds_all_units"] / results["pixels"]["seconds_all_units"], 3
            ),
            "steps": SynthesisSettings().steps,
            "seconds_first_images": round(ranking_seconds, 2),
            "results": results,
            "cpu_target_seconds": 30,
            "within_target": bool(
                ranking_seconds <= 10
                and np.all([r["seconds_all_units"] <= 30 for r in results.values()])
            ),
        }
    )
