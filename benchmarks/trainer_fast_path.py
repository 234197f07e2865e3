"""The Trainer's fast path (issue 15) against the Trainer before it, in the same run: seconds
per epoch of the same training (same model, data, seed) under each, over 3 seeds, after a
warm-up run, the first of the two alternating. The baseline is the pre-change
`moa_core/train/trainer.py`, read from git at `BASELINE_COMMIT` (it read the loss back to the
host after every batch); the fast path keeps it on the device and reads it every batch on a
CPU, every `GPU_CHECK_EVERY` batches on a GPU.

`ratio` = baseline seconds / fast-path seconds (≥ 0.95: not slower; > 1: faster), mean over
the seeds. `same_scores` says whether both trainers ended on the same scores (they should:
the arithmetic of a finite training is unchanged). One torch thread on a CPU.
`python -m benchmarks.run trainer_fast_path [--epochs 3] [--dataset digits]`
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from pathlib import Path

import torch

from benchmarks.common import device, emit_cases, mean_std, progress
from moa_core.train import trainer as fast_path
from moa_core.train.run import prepare

BASELINE_COMMIT = "c59b669"  # the last commit before the fast path
SEEDS = (0, 1, 2)
ROOT = Path(__file__).resolve().parent.parent


def baseline_trainer() -> type:
    """The Trainer class as it was at `BASELINE_COMMIT`, loaded from git into a module."""
    source = subprocess.run(
        ["git", "show", f"{BASELINE_COMMIT}:moa_core/train/trainer.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType("trainer_before_fast_path")
    sys.modules[module.__name__] = module  # its dataclasses look their module up
    exec(compile(source, f"{BASELINE_COMMIT}:trainer.py", "exec"), module.__dict__)
    return module.Trainer


def seconds_per_epoch(trainer_class: type, model_type: str, spec: str, settings: dict) -> tuple:
    model, _, train_config, dataset = prepare(model_type, spec, settings)
    start = time.perf_counter()
    result = trainer_class(model, dataset, train_config, device()).fit()
    seconds = (time.perf_counter() - start) / result.epochs_done
    return seconds, result.history[-1]["metrics"]


def run_case(model_type: str, spec: str, epochs: int) -> dict:
    before = baseline_trainer()
    times: dict[str, list[float]] = {"baseline": [], "fast_path": []}
    same = []
    seconds_per_epoch(fast_path.Trainer, model_type, spec, {"epochs": 1, "max_samples": 256})
    for seed in SEEDS:  # after a warm-up; which trainer goes first alternates
        settings = {"epochs": epochs, "seed": seed, "device": str(device())}
        runs = {}
        for name, trainer in (("baseline", before), ("fast_path", fast_path.Trainer))[
            :: 1 - 2 * (seed % 2)
        ]:
            runs[name] = seconds_per_epoch(trainer, model_type, spec, settings)
        (base_s, base_scores), (fast_s, fast_scores) = runs["baseline"], runs["fast_path"]
        times["baseline"].append(base_s)
        times["fast_path"].append(fast_s)
        same.append(base_scores == fast_scores)
        progress(f"{model_type} {spec} seed {seed}: {base_s:.3f} s/epoch before, {fast_s:.3f} now")
    ratios = [b / f for b, f in zip(times["baseline"], times["fast_path"], strict=True)]
    return {
        "model": model_type,
        "epochs": epochs,
        "baseline_seconds_per_epoch": mean_std(times["baseline"]),
        "fast_path_seconds_per_epoch": mean_std(times["fast_path"]),
        "ratio": mean_std(ratios),
        "same_scores": all(same),
    }


def run(epochs: int = 3, spec: str = "digits", model_type: str = "moa_plus") -> dict:
    if device().type == "cpu":
        torch.set_num_threads(1)
    start = time.perf_counter()
    case = run_case(model_type, spec, epochs)
    return emit_cases(
        "trainer_fast_path",
        start,
        f"the Trainer at {BASELINE_COMMIT} (a host read of the loss per batch)",
        case["ratio"]["mean"],
        {spec: case},
        {},
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="trainer_fast_path")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--model", default="moa_plus")
    args = parser.parse_args(argv)
    run(args.epochs, args.dataset, args.model)
