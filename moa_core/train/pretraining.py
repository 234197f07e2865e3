"""Paper 001's pretraining (Sec. III.B, Fig. 3) as separate steps, so a page can run, cache and
draw each decision on its own:

- `find_size` (steps 1–2): a VAE with a large latent (default 100), then the latent-size
  finder on its codes;
- `search_clusters` (steps 3–5): the VAE retrained at that size, UMAP + HDBSCAN on its codes
  → K, labels, noise;
- `pretrain_manager` (steps 6–8): the manager trained on the non-noise samples with KL to the
  soft labels, a latent size per cluster, the MoE-VAE's config;
- `train_mixture` (step 9): the MoE-VAE trained from the pretrained manager.

`run_pipeline` chains them (the CLI's `moa train moe_vae`). The pretraining VAEs are
`moe_vae` with one expert. Deviation, for CPU budgets: step 7 runs the finder on each
cluster's codes from step 1's VAE instead of training one VAE per cluster.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from moa_core import distributed
from moa_core.analysis.cluster_finder import (
    SELECTIONS,
    ClusterFinding,
    check_enough_samples,
    find_clusters,
)
from moa_core.analysis.latent_size import CLUSTERING, LatentSize, find_latent_size
from moa_core.analysis.outputs import collect_outputs
from moa_core.data import Dataset
from moa_core.device import resolve_device
from moa_core.models import ConfigError, build_model, config_class
from moa_core.models.base import coerce_value
from moa_core.models.moe_vae import MoEVAEConfig
from moa_core.train.control import TrainingControl
from moa_core.train.pipeline_record import (
    ClusterSummary,
    PipelineRecord,
    build_record,
    summarize_clusters,
)
from moa_core.train.run import DataSource, TrainedRun, prepare, train_model, training_samples
from moa_core.train.trainer import Callback, TrainEvent

Progress = Callable[[str], None]
PIPELINE_MODELS = (MoEVAEConfig.model_type,)  # the families `moa train` pretrains first
FINAL_LR = 1e-4  # paper 001, Sec. IV.D
FOLLOWER_STOPPED = "rank 0's pretraining did not finish (its own line says why)"
FOUND_KEYS = {"num_clusters", "latent_sizes"}  # what the pretraining decides


@dataclass(frozen=True)
class PretrainSettings:
    """Everything the pretraining decides with. Epochs sized for a CPU (the paper trains 1000):
    60 are what it takes USPS's classes to separate in the UMAP (benchmarks/RESULTS.md)."""

    start_latent: int = 100
    threshold: float = CLUSTERING
    vae_epochs: int = 60
    vae_lr: float = 5e-4  # paper 001, Sec. IV.B
    manager_epochs: int = 30
    manager_lr: float = 1e-3  # paper 001, Sec. IV.C
    batch_size: int = 100
    base_filters: int = 8
    n_neighbors: int = 0  # 0: Eq. 10
    min_cluster_size: int = 0  # 0: 2 % of the samples (see `find_clusters`)
    cluster_selection: str = "leaf"  # HDBSCAN's; the paper's default is "eom"
    max_samples: int = 0
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        positive = ("start_latent", "vae_epochs", "manager_epochs", "batch_size", "base_filters")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"pretraining: {name} must be ≥ 1")
        if not 0 < self.threshold <= 1:
            raise ConfigError("pretraining: threshold must be in (0, 1]")
        if min(self.n_neighbors, self.min_cluster_size, self.max_samples) < 0:
            raise ConfigError("pretraining: n_neighbors, min_cluster_size, max_samples ≥ 0")
        if self.min_cluster_size == 1:
            raise ConfigError("pretraining: min_cluster_size is 0 (automatic) or at least 2")
        if self.cluster_selection not in SELECTIONS:
            raise ConfigError(f"pretraining: cluster_selection is one of {', '.join(SELECTIONS)}")

    @classmethod
    def take(cls, overrides: dict[str, Any]) -> tuple[PretrainSettings, dict[str, Any]]:
        """Split `--set` style overrides into these settings and the rest (the final model's);
        the run-wide keys (samples, seed, device) go to both."""
        defaults = {f.name: f.default for f in fields(cls)}
        shared = {"max_samples", "seed", "device", "batch_size"}
        mine = {
            k: coerce_value("pretraining", k, v, type(defaults[k]))
            for k, v in overrides.items()
            if k in defaults
        }
        rest = {k: v for k, v in overrides.items() if k not in defaults or k in shared}
        found = sorted(FOUND_KEYS & rest.keys())
        if found:
            raise ConfigError(
                f"pretraining finds {' and '.join(found)} itself; pass pretrain=false to set them"
            )
        return cls(**mine), rest


# What each step's result depends on, on top of the steps before it: a page keeps a step's
# result while only later steps' settings change.
STEPS = ("size", "clusters", "manager")
_STEP_FIELDS = {
    "size": (
        "start_latent", "threshold", "vae_epochs", "vae_lr", "batch_size", "base_filters",
        "max_samples", "seed", "device",
    ),
    "clusters": ("n_neighbors", "min_cluster_size", "cluster_selection"),
    "manager": ("manager_epochs", "manager_lr"),
}  # fmt: skip


def step_key(spec: str, settings: PretrainSettings, step: str) -> tuple:
    """The dataset and every setting `step`'s result depends on."""
    names = [n for s in STEPS[: STEPS.index(step) + 1] for n in _STEP_FIELDS[s]]
    return (spec, *(getattr(settings, n) for n in names))


@dataclass
class SizeFinding:
    """Steps 1–2: the wide VAE's codes and the size read from their PCA."""

    dataset: Dataset
    codes: np.ndarray
    latent: LatentSize
    seconds: float


@dataclass
class ClusterSearch:
    """Steps 3–5: the retrained VAE's codes and HDBSCAN's verdict on their UMAP."""

    codes: np.ndarray
    clusters: ClusterFinding
    summary: ClusterSummary  # its scores against the true labels and points to draw
    seconds: dict[str, float]


@dataclass
class ManagerPretraining:
    """Steps 6–8: per-cluster latent sizes, the mixture's config and its pretrained manager."""

    expert_sizes: tuple[int, ...]
    model_config: MoEVAEConfig
    state: dict[str, torch.Tensor]
    probs: np.ndarray  # the pretrained manager's p over all samples
    record: PipelineRecord  # every decision so far and its scores (Tables II–III)


def vae_codes(
    spec: DataSource,
    latent: int,
    settings: PretrainSettings,
    callbacks: list[Callback] | None = None,
    control: TrainingControl | None = None,
) -> tuple[Dataset, np.ndarray]:
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
        callbacks,
        control,
    )
    _raise_unless_finished(run)
    x = run.dataset.x.to(next(run.model.parameters()).device)
    return run.dataset, collect_outputs(run.model, x).latents


def _raise_unless_finished(run: TrainedRun) -> None:
    if run.result.status != "finished":
        raise PipelineStopped(run.result.message or f"training {run.result.status}")


class PipelineStopped(RuntimeError):
    """A pretraining step did not finish (stopped by the user, or a NaN loss)."""


def check_samples(spec: DataSource, settings: PretrainSettings) -> int:
    """Refuse, before any training, a sample too small for UMAP and HDBSCAN; its size."""
    samples = len(training_samples(spec, settings.max_samples, settings.seed))
    try:
        check_enough_samples(samples)
    except ValueError as err:
        raise PipelineStopped(str(err)) from None
    return samples


def find_size(
    spec: DataSource,
    settings: PretrainSettings,
    callbacks: list[Callback] | None = None,
    control: TrainingControl | None = None,
) -> SizeFinding:
    """Steps 1–2 (paper 001, Fig. 4): a VAE at `start_latent`, PCA of its codes, the fewest
    components reaching `threshold` of the variance."""
    check_samples(spec, settings)
    start = time.perf_counter()
    data, codes = vae_codes(spec, settings.start_latent, settings, callbacks, control)
    latent = find_latent_size(codes, settings.threshold)
    return SizeFinding(data, codes, latent, _since(start))


def search_clusters(
    spec: DataSource,
    size: SizeFinding,
    settings: PretrainSettings,
    callbacks: list[Callback] | None = None,
    control: TrainingControl | None = None,
    reuse: ClusterSearch | None = None,
) -> ClusterSearch:
    """Steps 3–5: the VAE retrained at the found size, then UMAP (Eq. 10) and HDBSCAN.
    `reuse`: an earlier search from the same retrained VAE, whose codes are clustered again
    (only the UMAP or HDBSCAN settings changed)."""
    start = time.perf_counter()
    if reuse is None:
        _, codes = vae_codes(spec, size.latent.size, settings, callbacks, control)
        retrained = _since(start)
    else:
        codes, retrained = reuse.codes, reuse.seconds["retrained_vae"]
    clustering = time.perf_counter()
    clusters = find_clusters(
        codes,
        settings.n_neighbors,
        settings.min_cluster_size,
        settings.seed,
        selection=settings.cluster_selection,
    )
    summary = summarize_clusters(clusters, size.dataset)
    seconds = {"retrained_vae": retrained, "clusters": _since(clustering)}
    return ClusterSearch(codes, clusters, summary, seconds)


def cluster_sizes(
    codes: np.ndarray, labels: np.ndarray, k: int, threshold: float
) -> tuple[int, ...]:
    """Step 7: the finder on each cluster's codes (at least 2 samples per cluster)."""
    return tuple(
        find_latent_size(codes[labels == c], threshold).size if (labels == c).sum() > 1 else 1
        for c in range(k)
    )


def pretrain_manager(
    size: SizeFinding,
    search: ClusterSearch,
    settings: PretrainSettings,
    callbacks: list[Callback] | None = None,
    control: TrainingControl | None = None,
) -> ManagerPretraining:
    """Steps 6–8: a latent size per cluster, then the MoE-VAE's manager trained on the non-noise
    samples to match HDBSCAN's soft labels, KL(soft ‖ manager) (paper 001, Sec. IV.C); and
    the record of every decision so far, scored against the true labels."""
    start = time.perf_counter()
    clusters = search.clusters
    if clusters.k < 1:
        raise PipelineStopped(
            "HDBSCAN found no cluster: lower min_cluster_size or train the VAE longer"
        )
    sizes = cluster_sizes(size.codes, clusters.labels, clusters.k, settings.threshold)
    config = mixture_config(size.dataset, sizes, settings)
    sized = time.perf_counter()
    fitted = _fit_manager(
        config, size.dataset, clusters, settings, callbacks or [], control or TrainingControl()
    )
    seconds = {
        "large_vae": size.seconds,
        **search.seconds,
        "latent_sizes": round(sized - start, 2),
        "manager": _since(sized),
    }
    record = build_record(
        size.dataset, size.latent, clusters, search.summary, sizes, fitted[1], seconds
    )
    return ManagerPretraining(sizes, config, *fitted, record)


def mixture_config(
    data: Dataset, sizes: tuple[int, ...], settings: PretrainSettings
) -> MoEVAEConfig:
    """The MoE-VAE the pretraining decided on: one expert per cluster, of the sizes found."""
    channels, image_size, _ = data.image_shape
    return config_class("moe_vae")(
        in_channels=channels,
        image_size=image_size,
        num_clusters=len(sizes),
        latent_sizes=sizes,
        base_filters=settings.base_filters,
    )


def _fit_manager(
    config: MoEVAEConfig,
    data: Dataset,
    clusters: ClusterFinding,
    settings: PretrainSettings,
    callbacks: list[Callback],
    control: TrainingControl,
) -> tuple[dict[str, torch.Tensor], np.ndarray]:
    """Its own small loop, not the Trainer: the Trainer feeds a model images (and hard class
    indices), and the manager learns a soft target per sample. Same guards: the control is
    obeyed between batches and a non-finite loss stops the step."""
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
    step = 0
    for epoch in range(1, settings.manager_epochs + 1):
        for batch in torch.randperm(len(x), generator=generator).split(settings.batch_size):
            if not control.wait_for_turn():
                raise PipelineStopped("manager pretraining stopped")
            log_q = manager(x[batch]).log_softmax(1)
            loss = F.kl_div(log_q, target[batch], reduction="batchmean")
            if not torch.isfinite(loss):
                raise PipelineStopped(f"manager pretraining: loss {loss.item()} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
        for callback in callbacks:
            callback(TrainEvent("epoch", epoch, step, loss.item(), metrics={}))
    manager.eval()
    with torch.no_grad():
        probs = torch.cat(
            [manager(chunk.to(device)).softmax(1).cpu() for chunk in data.x.split(512)]
        )
    state = {f"manager.{k}": v.detach().cpu() for k, v in manager.state_dict().items()}
    return state, probs.numpy()


def final_overrides(
    config: MoEVAEConfig, settings: PretrainSettings, overrides: dict[str, Any]
) -> dict[str, Any]:
    """The final model's settings: K and the sizes found (`config`), the paper's lr 1e-4 and
    batch 100 (Sec. IV.D), then the caller's own overrides (epochs, alpha, …)."""
    return {
        "lr": FINAL_LR,
        "batch_size": settings.batch_size,
        "max_samples": settings.max_samples,
        "seed": settings.seed,
        "device": settings.device,
        **overrides,
        "num_clusters": config.num_clusters,
        "latent_sizes": list(config.latent_sizes),
        "base_filters": config.base_filters,
    }


@dataclass
class PipelineRun:
    """A finished pipeline: the trained mixture and the record of every decision."""

    run: TrainedRun
    record: PipelineRecord

    def checkpoint_meta(self) -> dict[str, Any]:
        return {**self.run.checkpoint_meta(), "pretraining": self.record.to_dict()}


def train_mixture(
    spec: DataSource,
    manager: ManagerPretraining,
    settings: PretrainSettings,
    overrides: dict[str, Any] | None = None,
    callbacks: list[Callback] | None = None,
    control: TrainingControl | None = None,
) -> PipelineRun:
    """Step 9: the MoE-VAE of step 8 trained from the pretrained manager on the same samples."""
    merged = final_overrides(manager.model_config, settings, overrides or {})
    run = train_model("moe_vae", spec, merged, callbacks, control, initial_state=manager.state)
    _raise_unless_finished(run)
    record = replace(manager.record, seconds={**manager.record.seconds})
    record.seconds["mixture"] = round(run.result.seconds, 2)
    return PipelineRun(run, record)


def run_pipeline(
    spec: DataSource,
    settings: PretrainSettings,
    overrides: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> PipelineRun | None:
    """All steps on `spec`; `progress` hears each step's name as it starts. The final model's
    settings are checked first, so a typo fails before minutes of pretraining.

    Under several processes rank 0 runs steps 1–8 alone (its UMAP and HDBSCAN are
    whole-dataset steps) while the others wait; every rank then takes the K and latent sizes
    it found, and all train step 9 together from its manager (whose batches are checked
    first: every process needs a share of each). Only rank 0 returns the run
    and its record; the others return None."""
    say = progress or (lambda _: None)
    prepare("moe_vae", spec, {**(overrides or {}), "max_samples": 2})
    samples = check_samples(spec, settings)
    world = distributed.current()
    step9_batch = (overrides or {}).get("batch_size", settings.batch_size)
    distributed.check_batches_share(samples, step9_batch, world)  # not after the pretraining
    if world.is_main:
        found: list[int] = []
        try:
            with distributed.alone():
                manager = _pretrain(spec, settings, say)
            found = list(manager.model_config.latent_sizes)
        finally:
            distributed.broadcast_ints(found)  # an empty list tells the others it failed
        say("4/4 training the MoE-VAE from the pretrained manager")
        return train_mixture(spec, manager, settings, overrides)
    sizes = distributed.broadcast_ints(None)
    if not sizes:
        raise PipelineStopped(FOLLOWER_STOPPED)
    data = training_samples(spec, settings.max_samples, settings.seed)
    config = mixture_config(data, tuple(sizes), settings)
    # Its weights are rank 0's, pretrained manager included, once the Trainer shares them.
    _raise_unless_finished(
        train_model("moe_vae", spec, final_overrides(config, settings, overrides or {}))
    )
    return None


def _pretrain(spec: DataSource, settings: PretrainSettings, say: Progress) -> ManagerPretraining:
    """Steps 1–8, each announced as it starts."""
    say(f"1/4 training a VAE with {settings.start_latent} latent dimensions; PCA of its codes")
    size = find_size(spec, settings)
    say(f"2/4 retraining the VAE with {size.latent.size} dimensions; UMAP and HDBSCAN")
    search = search_clusters(spec, size, settings)
    say(f"3/4 pretraining the manager on {search.clusters.k} clusters")
    return pretrain_manager(size, search, settings)


def wants_pretraining(model: str, overrides: dict[str, Any]) -> bool:
    """Pipeline families pretrain unless `pretrain=false` (then: a fixed K, from scratch);
    takes the key out of `overrides`."""
    if model not in PIPELINE_MODELS:
        return False
    pretrain = overrides.pop("pretrain", True)
    if not isinstance(pretrain, bool):
        raise ConfigError(f"pretrain must be true or false, got {pretrain!r}")
    return pretrain


def train_family(
    model: str,
    source: DataSource,
    overrides: dict[str, Any],
    callbacks: list[Callback] | None = None,
    progress: Progress | None = None,
) -> TrainedRun:
    """One training as `moa train` does it: a pipeline family pretrains first (its steps
    announced to `progress`; `callbacks` hear the other families' training)."""
    overrides = dict(overrides)
    if not wants_pretraining(model, overrides):
        return train_model(model, source, overrides, callbacks)
    if distributed.current().active:  # rank 0 alone would have a run to return
        raise distributed.ShardingError("train_family pretrains in one process; use moa train")
    settings, final = PretrainSettings.take(overrides)
    return run_pipeline(source, settings, final, progress).run


def _since(start: float) -> float:
    return round(time.perf_counter() - start, 2)
