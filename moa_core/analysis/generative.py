"""Paper 002's generative figures from a model with a learned prior per cluster (VaDE, DMVAE:
`ClusterPrior`), computed live at every snapshot of a training or once for a saved run.

- Samples per cluster: z ~ N(μ_k, σ²_k), decoded (Figs. 6, 7, 10, 11; row k = cluster k).
- Original vs reconstruction: z = μ̃ + σ̃ε with one ε, decoded to the mean (Figs. 4, 5, 8, 9,
  [REPO]'s procedure, spec §3).
- The latent scatter of prior samples and of encoded data, projected to 2-D by a PCA fitted
  to the encoder means (the paper draws t-SNE of prior samples; PCA is fast enough live and
  its axes keep their meaning from one epoch to the next only roughly: it is refitted).
- The ELBO per sample: minus the model's loss in evaluation mode (z = μ̃, no Gumbel noise),
  averaged over a seeded subset of the training samples, which clustering is scored on.

Every random draw comes from a generator seeded by the page, so a redraw after an epoch
changes only because the model changed, and the model's own noise is never consumed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from moa_core.analysis.eval_mode import eval_mode
from moa_core.data import Dataset, user_set_names
from moa_core.models import config_class
from moa_core.models.base import ClusterPrior, GenerativeExperts
from moa_core.train.jobs import JobSpec
from moa_core.ui_state import PageSettings, ablation

# The two families paper 002 compares (§8.1), in the paper's order: VaDE (§3), DMVAE (§6).
PAIR = ("vade", "dmvae")
LABELS = {"vade": "VaDE", "dmvae": "DMVAE"}
PRETRAIN_KEY = "pretrain_epochs"  # VaDE's plain-VAE epochs before the GMM fit (spec §4.6)
DATASETS = ("digits", "usps", "mnist", "spiral25k")  # §8.1's MNIST and spiral, and two small
IMAGE_SAMPLES = 10  # generated images per cluster: one row of Figs. 6–7
POINT_SAMPLES = 200  # generated points per cluster ([REPO] draws 1,000 for Figs. 10–11)
IMAGE_PAIRS = 40  # originals shown beside their reconstructions (Figs. 4–5 show 100)
SUBSET = 1000  # samples encoded for the scatter, the reconstructions of points and the ELBO
PRIOR_CODES = 100  # prior samples per cluster in the latent scatter
EVAL_BATCH = 500


class NotClusterPrior(ValueError):
    """The model has no learned prior per cluster to sample from."""


@dataclass
class GenerativeView:
    """One model's paper-002 figures as arrays (all numpy, on the CPU).

    `generated` [K, n, *sample]; a seeded subset of S samples: their `clusters` (argmax
    q(c|x)) [S], the first N of them as `originals` and `reconstructions`
    [N, *sample], their codes as `encoded_2d` [S, 2] beside `prior_2d` [K, m, 2] in the 2-D
    `projection` named in words; `elbo` per sample; `usage` [K], each cluster's share of the
    subset; `pretraining`: the model is still a plain VAE (VaDE before its GMM fit)."""

    kind: str
    generated: np.ndarray
    originals: np.ndarray
    reconstructions: np.ndarray
    clusters: np.ndarray
    prior_2d: np.ndarray
    encoded_2d: np.ndarray
    projection: str
    elbo: float
    usage: np.ndarray
    pretraining: bool


def cluster_prior(model: nn.Module) -> ClusterPrior:
    if not isinstance(model, ClusterPrior) or not isinstance(model, GenerativeExperts):
        raise NotClusterPrior(
            f"{type(model).__name__} has no learned prior per cluster: pick a VaDE or DMVAE run"
        )
    return model


def subset_indices(total: int, size: int, seed: int) -> torch.Tensor:
    """At most `size` sorted indices out of `total`, the same for the same seed (the spiral
    is stored arm by arm: its first points would all be one arm)."""
    if total <= size:
        return torch.arange(total)
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(total, generator=generator)[:size].sort().values


def project_2d(codes: np.ndarray, others: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """`codes` [S, L] and `others` [..., L] in 2-D: the latent itself when L ≤ 2 (padded with
    0), else the two principal axes of `codes`; and the projection in words."""
    width = codes.shape[1]
    if width <= 2:
        pad = [(0, 0)] * (others.ndim - 1) + [(0, 2 - width)]
        words = "the latent itself" if width == 2 else "the latent (1-D, drawn at y = 0)"
        return np.pad(codes, [(0, 0), (0, 2 - width)]), np.pad(others, pad), words
    centre = codes.mean(0)
    _, spread, axes = np.linalg.svd(codes - centre, full_matrices=False)
    share = float((spread[:2] ** 2).sum() / max((spread**2).sum(), 1e-12))
    words = f"PCA of μ̃, {share:.0%} of its variance"
    return (codes - centre) @ axes[:2].T, (others - centre) @ axes[:2].T, words


@torch.no_grad()
def mean_loss(model: nn.Module, x: torch.Tensor) -> float:
    """The model's loss per sample over `x` in evaluation mode (the negative ELBO)."""
    total = 0.0
    with eval_mode(model):
        for chunk in x.split(EVAL_BATCH):
            total += float(model(chunk).loss) * len(chunk)
    return total / max(1, len(x))


@torch.no_grad()
def generative_view(model: nn.Module, data: Dataset, seed: int = 0) -> GenerativeView:
    """Every figure's arrays for `model` on `data` (on the model's device), seeded."""
    prior = cluster_prior(model)
    device = next(model.parameters()).device
    keep = subset_indices(len(data), SUBSET, seed).to(data.x.device)
    x = data.x[keep].to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    images = data.kind == "image"
    with eval_mode(model):
        codes = prior.sample_cluster_codes(IMAGE_SAMPLES if images else POINT_SAMPLES, generator)
        generated = prior.decode_codes(codes).transpose(0, 1)  # [K, n, *sample]
        mu, std = prior.code_moments(x)
        z = mu + std * torch.randn(mu.shape, generator=generator, device=device)
        decoded = prior.decode_codes(z.unsqueeze(1))[:, 0]
        gates = torch.cat([model(chunk).gate_probs for chunk in x.split(EVAL_BATCH)])
    scatter = prior.sample_cluster_codes(PRIOR_CODES, generator).transpose(0, 1)
    encoded_2d, prior_2d, words = project_2d(mu.cpu().numpy(), scatter.cpu().numpy())
    clusters = gates.argmax(1).cpu().numpy()
    shown = IMAGE_PAIRS if images else len(x)
    return GenerativeView(
        kind=data.kind,
        generated=generated.float().cpu().numpy(),
        originals=x[:shown].float().cpu().numpy(),
        reconstructions=decoded[:shown].float().cpu().numpy(),
        clusters=clusters,
        prior_2d=prior_2d,
        encoded_2d=encoded_2d,
        projection=words,
        elbo=-mean_loss(model, x),
        usage=np.bincount(clusters, minlength=gates.shape[1]) / max(1, len(clusters)),
        pretraining=bool(getattr(model, "is_pretraining", False)),
    )


class GenerativeSnapshots:
    """A job's snapshot hook (`Trainer(snapshot_hooks=…)`): each snapshot gets the model's
    `GenerativeView` and the ELBO of every snapshot so far (index 0: the initial weights, then
    one per epoch), so the page redraws the figures and the ELBO curve from the job alone."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.history: list[dict[str, Any]] = []

    def __call__(self, model: nn.Module, data: Dataset) -> dict[str, Any]:
        view = generative_view(model, data, self.seed)
        row = {"epoch": len(self.history), "elbo": view.elbo, "pretraining": view.pretraining}
        self.history.append(row)
        return {"generative": view, "elbo_history": list(self.history)}


def generative_datasets() -> list[str]:
    """The page's datasets: paper 002's two kinds (images, the spiral), then the user's own."""
    return [*DATASETS, *user_set_names()]


@dataclass
class GenerativeSettings(PageSettings):
    """The Generative mixtures page's widgets. Sized for a lesson on a 2-core CPU (both models
    in about a minute); [REPO] trains 500 epochs at batch 200 on 55,000
    images (spec §1.3), so raise epochs and samples for the paper's look."""

    dataset: str = "spiral25k"  # Figs. 8–11; VaDE's and DMVAE's clusters read as arms
    num_clusters: int = 0  # 0: one cluster per class
    latent_dim: int = 10  # [REPO]'s default (spec §4.15)
    epochs: int = 20
    batch_size: int = 50
    max_samples: int = 3000  # the spiral25k's 25,000 points subsampled for a lesson
    seed: int = 0
    pretraining: bool = True  # VaDE's plain-VAE stage and GMM fit (§8.1.2: poor without)
    pretrain_epochs: int = 10

    def overrides(self) -> dict[str, Any]:
        """Training and model keys both families share (same data, seed and K)."""
        return {
            "epochs": int(self.epochs),
            "batch_size": int(self.batch_size),
            "max_samples": int(self.max_samples),
            "seed": int(self.seed),
            "latent_dim": int(self.latent_dim),
            **({"num_clusters": int(self.num_clusters)} if self.num_clusters else {}),
        }

    def job_specs(self) -> list[JobSpec]:
        """VaDE (with `pretrain_epochs` of pretraining, or its ablation without) beside DMVAE,
        each with its own snapshot hook."""
        specs = []
        for model_type in PAIR:
            overrides, label = self.overrides(), LABELS[model_type]
            off = ablation(model_type) if has_field(model_type, PRETRAIN_KEY) else None
            if off and not self.pretraining:
                overrides.update(off[1])
                label = f"{label} {off[0]}"
            elif off:
                overrides[PRETRAIN_KEY] = int(self.pretrain_epochs)
            hooks = (GenerativeSnapshots(int(self.seed)),)
            specs.append(JobSpec(model_type, self.dataset, overrides, label, snapshot_hooks=hooks))
        return specs


def has_field(model_type: str, name: str) -> bool:
    return name in {field.name for field in dataclasses.fields(config_class(model_type))}


def arm_purity(generated: np.ndarray, points: np.ndarray, arms: np.ndarray) -> np.ndarray:
    """Per arm of the spiral, the share of the generated points that land on it which come
    from its most common cluster (spec §5.2, Figs. 10 vs 11: DMVAE draws one arm per cluster,
    VaDE mixes two); NaN for an arm no generated point lands on.

    `generated` [K, n, 2] are the decoded prior samples of each cluster (`GenerativeView`),
    `points` [N, 2] data points with their arm labels `arms` [N] (0 … A−1); a generated point
    lands on the arm of its nearest data point.
    """
    samples = generated.reshape(-1, generated.shape[-1])
    clusters = np.repeat(np.arange(generated.shape[0]), generated.shape[1])
    landed = np.empty(len(samples), dtype=int)
    for start in range(0, len(samples), EVAL_BATCH):  # [EVAL_BATCH, N] distances at a time
        chunk = samples[start : start + EVAL_BATCH]
        distances = ((chunk[:, None, :] - points[None, :, :]) ** 2).sum(-1)
        landed[start : start + EVAL_BATCH] = arms[distances.argmin(1)]
    purity = np.full(int(arms.max()) + 1, np.nan)
    for arm in range(len(purity)):
        on_arm = clusters[landed == arm]
        if len(on_arm):
            purity[arm] = np.bincount(on_arm).max() / len(on_arm)
    return purity


def dominated_arms(purity: np.ndarray, threshold: float = 0.8) -> int:
    """How many arms are each more than `threshold` one cluster (empty arms do not count)."""
    return int((np.nan_to_num(purity, nan=0.0) > threshold).sum())
