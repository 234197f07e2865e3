"""Paper 001's pipeline end to end (Tables II–IV on a CPU budget): K found without being told,
the labelled share and HDBSCAN's accuracy on it, the pretrained manager's ACC/NMI/ARI, the
final MoE-VAE's ACC/NMI/ARI, and seconds per stage. MNIST and Fashion-MNIST only on a GPU.

The in-run baseline is the same MoE-VAE with K fixed to the number of classes and the found
latent size, trained from scratch (no pretraining) as long and at the same lr 1e-4; the ratio
is the pipeline's final ACC over the baseline's, averaged over the datasets."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from benchmarks.common import emit_cases, progress, run_cases
from moa_core.train.pretraining import FINAL_LR, PretrainSettings, run_pipeline
from moa_core.train.run import train_model

CPU_SETTINGS = {"epochs": 20}  # the pretraining's defaults: 60 VAE and 30 manager epochs
CPU_CASES = (("digits", CPU_SETTINGS), ("usps", CPU_SETTINGS))
GPU_SETTINGS = {"vae_epochs": 100, "manager_epochs": 50, "epochs": 50}
GPU_CASES = (
    ("digits", CPU_SETTINGS),
    ("usps", CPU_SETTINGS),
    ("mnist", GPU_SETTINGS),
    ("fashion_mnist", GPU_SETTINGS),
)
SCORES = ("acc", "nmi", "ari")


def run_case(spec: str, case: dict) -> dict:
    settings, final = PretrainSettings.take(dict(case))
    pipeline = run_pipeline(spec, settings, final, progress=progress)
    record, metrics = pipeline.record, pipeline.run.result.metrics
    classes = pipeline.run.dataset.num_classes
    fixed = {"num_clusters": classes, "latent_sizes": [record.latent_size], "lr": FINAL_LR}
    baseline = train_model("moe_vae", spec, {**fixed, **final})
    progress(f"{spec}: pipeline ACC {metrics['acc']:.3f}, fixed K ACC "
             f"{baseline.result.metrics['acc']:.3f}")  # fmt: skip
    return {
        "samples": record.samples,
        "classes": classes,
        "k_found": record.k_found,
        "latent_size": record.latent_size,
        "latent_sizes": record.latent_sizes,
        "labeled_fraction": record.labeled_fraction,
        "acc_labeled": record.acc_labeled,
        "gmm_acc": record.gmm_acc,
        "manager": {
            "acc": record.manager_acc,
            "nmi": record.manager_nmi,
            "ari": record.manager_ari,
        },
        "final": {k: round(metrics[k], 4) for k in SCORES},
        "fixed_k_no_pretraining": {k: round(baseline.result.metrics[k], 4) for k in SCORES},
        "seconds": record.seconds,
        "settings": {**dataclasses.asdict(settings), **final},
    }


def run() -> dict:
    start = time.perf_counter()
    results, skipped = run_cases(CPU_CASES, run_case, GPU_CASES)
    ratio = np.mean(
        [
            r["final"]["acc"] / max(r["fixed_k_no_pretraining"]["acc"], 1e-9)
            for r in results.values()
        ]
    )
    return emit_cases(
        "moe_vae_pipeline",
        start,
        "moe_vae with K = classes, no pretraining, same epochs",
        ratio,
        results,
        skipped,
    )
