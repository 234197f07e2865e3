"""UMAP seconds on real latent codes: numba compile (warm-up), first embedding, cached call."""

from __future__ import annotations

import time

from benchmarks.common import device, device_label, emit
from moa_core.analysis.embedding import UmapParams, umap_embedding, warm_up
from moa_core.analysis.outputs import collect_outputs
from moa_core.data import DatasetError
from moa_core.train.run import train_model

# (dataset, training samples): digits gives 1,797 codes, MNIST 10,000.
CASES = (("digits", 0), ("mnist", 10_000))


def _timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def measure(spec: str, samples: int) -> dict:
    """Embed the latent codes of a briefly trained MoA+ twice: computed, then cached."""
    run_ = train_model("moa_plus", spec, {"epochs": 1, "max_samples": samples})
    latents = collect_outputs(run_.model, run_.dataset.x.to(device())).latents
    key = f"bench/{spec}"
    first_s, _ = _timed(lambda: umap_embedding(latents, UmapParams(), key=key))
    cached_s, _ = _timed(lambda: umap_embedding(latents, UmapParams(), key=key))
    return {
        "points": len(latents),
        "dims": latents.shape[1],
        "first_seconds": round(first_s, 3),
        "cached_seconds": round(cached_s, 6),
        "ratio": round(first_s / max(cached_s, 1e-9), 1),
    }


def run() -> dict:
    compile_s, _ = _timed(warm_up)
    cases, skipped = [], {}
    for spec, samples in CASES:
        try:
            cases.append(measure(spec, samples))
        except DatasetError as err:
            skipped[spec] = str(err)
    return emit(
        {
            "name": "umap_time",
            "device": device_label(),
            "seconds": cases[0]["first_seconds"] if cases else None,
            "compile_seconds": round(compile_s, 2),
            "baseline": "cached call",
            "ratio": cases[0]["ratio"] if cases else None,
            "cases": cases,
            "skipped": skipped,
        }
    )
