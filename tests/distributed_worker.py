"""Run under torchrun by tests/test_distributed.py: train each family of `CASES` on this
process's shard and, on rank 0, write per-epoch losses and whether every rank ended with the
same weights (their gradients were all-reduced); then MoE-VAE's pipeline with batches two
processes cannot share, and `moa train moa_plus` on every rank, as `--nproc 2` starts it.
argv[2:] may name the cases to run ("pipeline batch" and "cli" too; all by default)."""

from __future__ import annotations

import io
import json
import sys
from contextlib import redirect_stdout
from pathlib import Path

import torch
import torch.distributed as dist

from moa_core import cli, distributed
from moa_core.train.pretraining import PretrainSettings, run_pipeline
from moa_core.train.run import train_model

TINY_VAE = {"latent_dim": 3, "encoder_units": [16], "decoder_units": [16]}
# Each touches a different global statistic or noise: (name, model, dataset, settings).
# 203 samples in batches of 50: the last global batch (3) splits 2 / 1.
COMMON = {"epochs": 1, "max_samples": 203, "batch_size": 50, "device": "cpu"}
CASES = [
    # Two optimizer phases, augmentation, relevance normalization, γ of the global batch.
    (
        "neural_em two_fold",
        "neural_em",
        "digits",
        {"mode": "two_fold", "conv_channels": [4, 8], "fc_units": 16},
    ),
    # Gates with relevance normalization and their neural-EM regularizer.
    (
        "multipath_cc",
        "multipath_cc",
        "digits",
        {"conv_channels": [4, 8, 8], "dense_units": 16, "gate_hidden": 4},
    ),
    # The same under bf16 autocast: global statistics of bf16 activations kept in float32.
    (
        "multipath_cc bf16",
        "multipath_cc",
        "digits",
        {"conv_channels": [4, 8, 8], "dense_units": 16, "gate_hidden": 4, "bf16": True},
    ),
    # Gumbel and Gaussian noise.
    ("dmvae", "dmvae", "spiral25k", {**TINY_VAE, "gate_units": [16]}),
    # The batch entropy, augmentation and the reparametrization's noise.
    (
        "moe_vae",
        "moe_vae",
        "digits",
        {"num_clusters": 3, "latent_sizes": [2, 3, 2], "base_filters": 4},
    ),
    # The GMM fit after pretraining: every rank fits, rank 0's is broadcast.
    ("vade", "vade", "spiral25k", {**TINY_VAE, "pretrain_epochs": 1}),
]


# `moa train moa_plus --dataset digits --nproc 2`: 645 samples in batches of 100, so the last
# global batch (45) splits 23 / 22, unevenly.
CLI_SETTINGS = {"epochs": 2, "max_samples": 645, "batch_size": 100}


def _same_weights_everywhere(model: torch.nn.Module) -> bool:
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, flat)
    return all(torch.equal(flat, other) for other in gathered)


def main(out: str, names: list[str]) -> None:
    world, _ = distributed.join("cpu")
    results = {}
    for name, model, dataset, settings in CASES:
        if names and name not in names:
            continue
        run = train_model(model, dataset, {**COMMON, **settings})
        same = _same_weights_everywhere(run.model)
        results[name] = {
            "losses": [row["train_loss"] for row in run.result.history],
            "same_weights": same,
            "status": run.result.status,
        }
    if not names or "pipeline batch" in names:
        results["pipeline batch"] = _pipeline_refused_before_pretraining()
    if not names or "cli" in names:  # `moa train … --nproc 2` as each rank runs it
        results["cli"] = _cli(Path(out).with_name("two.safetensors"), world.is_main)
    if world.is_main:
        with open(out, "w") as handle:
            json.dump(results, handle)
    distributed.leave()


def _pipeline_refused_before_pretraining() -> dict:
    """MoE-VAE's pipeline when step 9's last global batch (1 of 201 in 100s) cannot be shared:
    every rank says so before rank 0 pretrains for minutes (no step announced)."""
    settings, final = PretrainSettings.take({"max_samples": 201, "batch_size": 100})
    announced: list[str] = []
    try:
        run_pipeline("digits", settings, {**final, "device": "cpu"}, announced.append)
    except distributed.ShardingError as err:
        return {"refused": str(err), "announced": announced}
    return {"refused": None, "announced": announced}


def _cli(checkpoint: Path, is_main: bool) -> dict:
    """`moa train moa_plus` on this rank; rank 0 alone may print (the others fail if they do)."""
    settings = [f"{key}={value}" for key, value in CLI_SETTINGS.items()]
    printed = io.StringIO()
    with redirect_stdout(printed):
        code = cli.main(
            ["train", "moa_plus", "--dataset", "digits", "--device", "cpu"]
            + ["--out", str(checkpoint), "--set", *settings]
        )
    if not is_main and printed.getvalue():
        raise SystemExit(f"rank other than 0 printed: {printed.getvalue()!r}")
    return {"code": code, "stdout": printed.getvalue()}


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
