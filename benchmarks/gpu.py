"""One script for a GPU task (issue 15): every case the papers need a GPU for, sized to fit in
8 minutes on one H100/H200-class GPU, one JSON line per case. `--smoke` runs the same code on
tiny settings (the embedded digits, one epoch), which is what CI runs on its CPU.

Cases (each with its in-run baseline where that is cheap):
- `expert_bank`: the grouped-convolution bank vs a Python loop over the same experts
  (M = 10, 28×28, batches 64 and 128; benchmarks/expert_bank.py).
- `moa_plus_epoch`: MoA+ (M = 10) seconds per epoch on full MNIST, under the Trainer's fast
  path and under the Trainer before it (benchmarks/trainer_fast_path.py); target ≤ 1 s.
- `neural_em`: neural EM's two-fold ACC/NMI on MNIST after a fixed number of epochs.
- `moe_vae_pipeline`: MoE-VAE's whole pipeline on MNIST (VAE, UMAP, HDBSCAN, manager,
  mixture): seconds per step and the number of clusters it finds.
- `routing`: `multipath_cc` vs `singlepath` test accuracy on CIFAR-10 after a fixed number of
  epochs; skipped with its reason when `cifar-10-batches-py/` is not in MOA_DATA_DIR.
- `precision`: five families on 20,000 MNIST images for 2 epochs in fp32, bf16 autocast and
  compiled: seconds and scores, the evidence for turning bf16 or compile on by default.

`make bench-gpu` (or `SMOKE=1`), or `python -m benchmarks.gpu [--smoke] [--only CASE …]`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from benchmarks import expert_bank, trainer_fast_path
from benchmarks.common import device, device_label, emit, progress
from moa_core.data import DatasetError
from moa_core.train.pretraining import PretrainSettings, run_pipeline
from moa_core.train.run import train_model

FULL = {  # what a GPU task runs: the papers' data, epochs that fit the 8 minutes together
    "mnist": "mnist",
    "cifar": "cifar10",
    "moa_epochs": 3,
    "em_epochs": 5,
    "routing_epochs": 5,
    "pipeline": {"vae_epochs": 10, "manager_epochs": 5},
    "pipeline_epochs": 5,
    "precision_epochs": 2,
    "precision_samples": 20_000,  # 30 trainings and 5 compiles within the 8 minutes
    "max_samples": 0,
}
SMOKE = {  # the same code on the embedded digits, seconds on a CPU
    "mnist": "digits",
    "cifar": "digits",
    "moa_epochs": 1,
    "em_epochs": 1,
    "routing_epochs": 1,
    "pipeline": {"vae_epochs": 1, "manager_epochs": 1, "min_cluster_size": 10},
    "pipeline_epochs": 1,
    "precision_epochs": 1,
    "precision_samples": 32,  # bf16 on a CPU without bf16 units is emulated: one small batch
    "max_samples": 256,
}


def case_expert_bank(sizes: dict) -> dict:
    repeats = 20 if device().type == "cuda" else 2
    cases = [expert_bank.measure(10, 28, batch, repeats) for batch in (64, 128)]
    return {"ratio": cases[0]["ratio"], "baseline": "per-expert Python loop", "cases": cases}


def case_moa_plus_epoch(sizes: dict) -> dict:
    settings = {"epochs": sizes["moa_epochs"], "device": str(device())}
    if sizes["max_samples"]:
        settings["max_samples"] = sizes["max_samples"]
    warm_up = {**settings, "epochs": 1, "max_samples": 256}  # kernels, allocator, imports
    trainer_fast_path.seconds_per_epoch(
        trainer_fast_path.fast_path.Trainer, "moa_plus", sizes["mnist"], warm_up
    )
    fast, scores = trainer_fast_path.seconds_per_epoch(
        trainer_fast_path.fast_path.Trainer, "moa_plus", sizes["mnist"], settings
    )
    before, _ = trainer_fast_path.seconds_per_epoch(
        trainer_fast_path.baseline_trainer(), "moa_plus", sizes["mnist"], settings
    )
    return {
        "seconds_per_epoch": round(fast, 3),
        "baseline": f"the Trainer at {trainer_fast_path.BASELINE_COMMIT}",
        "baseline_seconds_per_epoch": round(before, 3),
        "ratio": round(before / fast, 3),
        "nmi": round(scores["nmi"], 4),
    }


def _scores(model: str, spec: str, overrides: dict) -> dict:
    start = time.perf_counter()
    run = train_model(model, spec, {**overrides, "device": str(device())})
    metrics = run.result.metrics
    keys = ("acc", "nmi", "accuracy", "dead_gate_fraction")
    return {
        "seconds": round(time.perf_counter() - start, 3),
        **{k: round(metrics[k], 4) for k in keys if isinstance(metrics.get(k), float)},
    }


def _limited(sizes: dict, **settings: object) -> dict:
    return {**settings, **({"max_samples": sizes["max_samples"]} if sizes["max_samples"] else {})}


def case_neural_em(sizes: dict) -> dict:
    return _scores("neural_em", sizes["mnist"], _limited(sizes, epochs=sizes["em_epochs"]))


def case_moe_vae_pipeline(sizes: dict) -> dict:
    settings = PretrainSettings(
        **sizes["pipeline"], max_samples=sizes["max_samples"], device=str(device())
    )
    final = {"epochs": sizes["pipeline_epochs"], "device": str(device())}
    pipeline = run_pipeline(sizes["mnist"], settings, final, progress=progress)
    summary = pipeline.record.summary()
    return {
        "seconds_per_step": {k: round(v, 2) for k, v in pipeline.record.seconds.items()},
        "k_found": summary.get("k_found"),
        "nmi": round(pipeline.run.result.metrics["nmi"], 4),
    }


def case_routing(sizes: dict) -> dict:
    settings = _limited(sizes, epochs=sizes["routing_epochs"])
    cc = _scores("multipath_cc", sizes["cifar"], settings)
    single = _scores("singlepath", sizes["cifar"], settings)
    return {
        "multipath_cc": cc,
        "singlepath": single,
        "baseline": "singlepath, the same epochs",
        "ratio": round(cc.get("accuracy", 0.0) / max(single.get("accuracy", 0.0), 1e-6), 3),
    }


# Which families gain from bf16 autocast and torch.compile (issue 15 sets them on by default
# on CUDA only where measured to help): each family's settings, MNIST-sized models.
PRECISION_FAMILIES = {
    "moa_plus": {},
    "neural_em": {"mode": "em_only"},  # two-fold steps its phases past the compiled forward
    "dmvae": {},
    "multipath_cc": {},
    "moe_vae": {},  # from scratch, K = the classes (its pipeline is `moe_vae_pipeline`)
}
PRECISION_MODES = {"fp32": {}, "bf16": {"bf16": True}, "compile": {"compile": True}}


def case_precision(sizes: dict) -> dict:
    """Seconds for a few epochs and the final scores of each family in fp32, under bf16
    autocast, and compiled (compile time included: it is what a run pays). On a CPU (the
    smoke run) compile is left out: inductor needs a C++ toolchain and minutes there."""
    modes = {k: v for k, v in PRECISION_MODES.items() if device().type == "cuda" or k != "compile"}
    result = {}
    for family, settings in PRECISION_FAMILIES.items():
        base = {"epochs": sizes["precision_epochs"], "max_samples": sizes["precision_samples"]}
        base.update(settings)
        result[family] = {mode: _scores(family, sizes["mnist"], {**base, **extra})
                          for mode, extra in modes.items()}  # fmt: skip
        fp32 = result[family]["fp32"]["seconds"]
        for mode in modes:
            result[family][mode]["ratio"] = round(
                fp32 / max(result[family][mode]["seconds"], 1e-6), 3
            )
    return {"baseline": "fp32, the same family and epochs", "families": result}


CASES: dict[str, Callable[[dict], dict]] = {
    "expert_bank": case_expert_bank,
    "moa_plus_epoch": case_moa_plus_epoch,
    "neural_em": case_neural_em,
    "moe_vae_pipeline": case_moe_vae_pipeline,
    "routing": case_routing,
    "precision": case_precision,
}


def run(smoke: bool = False, only: tuple[str, ...] = tuple(CASES)) -> list[dict]:
    sizes = SMOKE if smoke else FULL
    if device().type == "cpu":
        torch.set_num_threads(1)
    lines = []
    for name in only:
        progress(f"bench-gpu: {name}{' (smoke)' if smoke else ''}")
        start = time.perf_counter()
        line = {"name": f"gpu_{name}", "device": device_label(), "smoke": smoke}
        try:
            line.update(CASES[name](sizes))
        except DatasetError as err:  # data that is not here: said, not failed
            line["skipped"] = str(err)
        line["wall_seconds"] = round(time.perf_counter() - start, 1)
        lines.append(emit(line))
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench-gpu", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny settings, for CI on a CPU")
    parser.add_argument("--only", nargs="+", choices=list(CASES), default=list(CASES))
    args = parser.parse_args(argv)
    run(args.smoke, tuple(args.only))


if __name__ == "__main__":
    main()
