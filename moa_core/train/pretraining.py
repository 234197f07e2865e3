"""Paper 001's pretraining (Sec. III.B, Fig. 3), step by step, so each decision can be shown:

1. a VAE with a large latent (default 100) on the data, 2. the latent-size finder on its codes,
3. the VAE retrained at that size, 4–5. UMAP + HDBSCAN on the new codes → K, labels, noise,
6. the manager trained on the non-noise samples with KL to the soft labels, 7. a latent size
per cluster, 8. the MoE-VAE built from K, those sizes and the manager's weights, 9. trained.

The pretraining VAEs are `moe_vae` with one expert. Deviation, for CPU budgets: step 7 runs
the finder on each cluster's codes from step 1's VAE instead of training one VAE per cluster.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from moa_core.analysis.cluster_finder import ClusterFinding, find_clusters
from moa_core.analysis.latent_size import CLUSTERING, LatentSize, find_latent_size
from moa_core.analysis.outputs import collect_outputs
from moa_core.data import Dataset
from moa_core.device import resolve_device
from moa_core.models import build_model, config_class
from moa_core.models.moe_vae import MoEVAEConfig
from moa_core.train.run import TrainedRun, train_model

Progress = Callable[[str], None]


@dataclass(frozen=True)
class PretrainSettings:
    start_latent: int = 100
    threshold: float = CLUSTERING
    vae_epochs: int = 15
    vae_lr: float = 5e-4  # paper 001, Sec. IV.B
    manager_epochs: int = 15
    manager_lr: float = 1e-3  # paper 001, Sec. IV.C
    batch_size: int = 100
    base_filters: int = 8
    n_neighbors: int = 0  # 0: Eq. 10
    min_cluster_size: int = 0  # 0: HDBSCAN's default
    max_samples: int = 0
    seed: int = 0
    device: str = "auto"


@dataclass
class Pretraining:
    """Every decision of the pipeline, with the numbers the pages draw."""

    dataset: Dataset
    latent: LatentSize  # step 2
    clusters: ClusterFinding  # step 5
    expert_sizes: tuple[int, ...]  # step 7
    model_config: MoEVAEConfig  # step 8
    manager_state: dict[str, torch.Tensor]  # step 6
    manager_probs: np.ndarray  # the pretrained manager's p over all samples
    seconds: dict[str, float] = field(default_factory=dict)


def vae_codes(spec: str, latent: int, settings: PretrainSettings) -> tuple[Dataset, np.ndarray]:
    """Train a one-expert `moe_vae` with `latent` dimensions; its μ for every sample."""
    run = train_model(
        "moe_vae",
        spec,
        {
            "num_clusters": 1,
            "latent_sizes": [latent],
            "base_filters": settings.base_filters,
            "epochs": settings.vae_epochs,
            "lr": settings.vae_lr,
            "batch_size": settings.batch_size,
            "max_samples": settings.max_samples,
            "seed": settings.seed,
            "device": settings.device,
        },
    )
    x = run.dataset.x.to(next(run.model.parameters()).device)
    return run.dataset, collect_outputs(run.model, x).latents


def cluster_sizes(
    codes: np.ndarray, labels: np.ndarray, k: int, threshold: float
) -> tuple[int, ...]:
    """Step 7: the finder on each cluster's codes (at least 2 samples per cluster)."""
    return tuple(
        find_latent_size(codes[labels == c], threshold).size if (labels == c).sum() > 1 else 1
        for c in range(k)
    )


def pretrain_manager(
    config: MoEVAEConfig, data: Dataset, clusters: ClusterFinding, settings: PretrainSettings
) -> tuple[dict[str, torch.Tensor], np.ndarray]:
    """Step 6: the MoE-VAE's manager trained on the non-noise samples to match HDBSCAN's soft
    labels, KL(soft ‖ manager) (paper 001, Sec. IV.C); its weights and its p for all samples."""
    device = resolve_device(settings.device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        manager = build_model(config).manager.to(device)
    keep = torch.from_numpy(np.flatnonzero(clusters.labels >= 0))
    x = data.x[keep].to(device)
    target = torch.from_numpy(clusters.soft[keep.numpy()]).float().to(device)
    optimizer = torch.optim.Adam(manager.parameters(), lr=settings.manager_lr)
    generator = torch.Generator().manual_seed(settings.seed)
    manager.train()
    for _ in range(settings.manager_epochs):
        for batch in torch.randperm(len(x), generator=generator).split(settings.batch_size):
            log_q = manager(x[batch]).log_softmax(1)
            loss = F.kl_div(log_q, target[batch], reduction="batchmean")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    manager.eval()
    with torch.no_grad():
        probs = torch.cat(
            [manager(chunk.to(device)).softmax(1).cpu() for chunk in data.x.split(512)]
        )
    state = {f"manager.{k}": v.detach().cpu() for k, v in manager.state_dict().items()}
    return state, probs.numpy()


def pretrain(
    spec: str, settings: PretrainSettings, progress: Progress | None = None
) -> Pretraining:
    """Steps 1–8 on `spec`; `progress` hears the name of each step as it starts."""
    say = progress or (lambda _: None)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 2)
        clock = now

    say(f"1/6 training a VAE with {settings.start_latent} latent dimensions")
    data, wide_codes = vae_codes(spec, settings.start_latent, settings)
    latent = find_latent_size(wide_codes, settings.threshold)
    lap("large_vae")
    say(f"2/6 retraining the VAE with {latent.size} latent dimensions")
    _, codes = vae_codes(spec, latent.size, settings)
    lap("retrained_vae")
    say("3/6 UMAP and HDBSCAN")
    clusters = find_clusters(codes, settings.n_neighbors, settings.min_cluster_size, settings.seed)
    lap("clusters")
    k = max(1, clusters.k)
    say(f"4/6 latent sizes of the {k} clusters")
    sizes = cluster_sizes(wide_codes, clusters.labels, k, settings.threshold)
    channels, size, _ = data.image_shape  # the VAEs above take image data only
    config = config_class("moe_vae")(
        in_channels=channels,
        image_size=size,
        num_clusters=k,
        latent_sizes=sizes,
        base_filters=settings.base_filters,
    )
    lap("latent_sizes")
    say("5/6 pretraining the manager on the labelled samples")
    state, probs = pretrain_manager(config, data, clusters, settings)
    lap("manager")
    return Pretraining(data, latent, clusters, sizes, config, state, probs, seconds)


def train_mixture(
    spec: str, pretraining: Pretraining, settings: PretrainSettings, epochs: int, lr: float = 1e-4
) -> TrainedRun:
    """Step 9: the MoE-VAE of step 8 trained from the pretrained manager on the same samples
    (paper 001, Sec. IV.D: lr 1e-4, batch 100)."""
    config = pretraining.model_config
    overrides = {
        "num_clusters": config.num_clusters,
        "latent_sizes": list(config.latent_sizes),
        "base_filters": config.base_filters,
        "epochs": epochs,
        "lr": lr,
        "batch_size": settings.batch_size,
        "max_samples": settings.max_samples,
        "seed": settings.seed,
        "device": settings.device,
    }
    return train_model("moe_vae", spec, overrides, initial_state=pretraining.manager_state)
