"""What each expert generates (paper 001, Sec. IV.E): samples from its latent space (Fig. 8),
walks along one latent dimension (Figs. 9–10), interpolations between two images, and the
all-ones probe reconstructed by every expert (Fig. 7).

VAE experts sample from their prior N(0, I); a mixture with a learned prior per cluster
(paper 002's VaDE and DMVAE, `ClusterPrior`) samples cluster k from N(μ_k, σ²_k). Plain
autoencoder experts (MoA) have no prior, so their codes are modelled by the diagonal Gaussian
fitted to the codes of the samples each expert wins; a walk's ±3 is then in units of that
Gaussian's standard deviation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from moa_core.analysis.eval_mode import eval_mode
from moa_core.analysis.outputs import collect_outputs
from moa_core.models.base import ClusterPrior, GenerativeExperts

WALK_RANGE = 3.0  # the walk spans mean ± 3 standard deviations


class NotGenerative(ValueError):
    """The model's experts cannot decode codes into images."""


def generative(model: nn.Module) -> GenerativeExperts:
    if not isinstance(model, GenerativeExperts):
        raise NotGenerative(
            f"{type(model).__name__} has no decoding experts: pick a MoA, MoE-VAE, VaDE or "
            "DMVAE run"
        )
    return model


@dataclass(frozen=True)
class LatentPrior:
    """Each expert's code distribution, a diagonal Gaussian: mean and std [K, L_max] (zero
    beyond an expert's own latent size)."""

    mean: np.ndarray
    std: np.ndarray
    sizes: tuple[int, ...]
    fitted: bool  # False: the model's own prior; True: fitted to the expert's codes
    per_cluster: bool = False  # the model's prior is N(μ_k, σ²_k) per cluster, not N(0, I)


def prior_name(prior: LatentPrior) -> str:
    """Where an expert's sample codes come from, in the words a caption uses."""
    if prior.fitted:
        return "the Gaussian fitted to the codes of the images the expert wins (an autoencoder)"
    if prior.per_cluster:
        return "the cluster's learned prior N(μ_k, σ²_k) (paper 002)"
    return "the expert's prior N(0, I) (a VAE)"


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def latent_prior(model: nn.Module, x: torch.Tensor | None = None) -> LatentPrior:
    """N(0, I) for VAE experts, N(μ_k, σ²_k) for a learned per-cluster prior; for autoencoder
    experts, the Gaussian of each expert's codes over the samples it wins (all samples when
    it wins fewer than two). `x` is needed then."""
    experts = generative(model)
    sizes = experts.expert_latent_sizes
    k, width = len(sizes), max(sizes)
    mask = (np.arange(width)[None, :] < np.array(sizes)[:, None]).astype(np.float32)
    if isinstance(model, ClusterPrior):
        mean, std = (t.detach().float().cpu().numpy() for t in model.cluster_prior_moments())
        return LatentPrior(mean * mask, std * mask, sizes, fitted=False, per_cluster=True)
    if experts.variational:
        return LatentPrior(np.zeros((k, width), np.float32), mask, sizes, fitted=False)
    if x is None:
        raise ValueError("autoencoder experts need data to fit their code distribution")
    x = x.to(_device(model))
    with eval_mode(model):
        codes = torch.cat([experts.expert_codes(c) for c in x.split(512)]).cpu().numpy()
    winners = collect_outputs(model, x).clusters
    mean, std = np.zeros((k, width), np.float32), np.ones((k, width), np.float32)
    for expert in range(k):
        own = codes[winners == expert, expert]
        own = own if len(own) > 1 else codes[:, expert]
        mean[expert], std[expert] = own.mean(0), own.std(0) + 1e-6
    return LatentPrior(mean * mask, std * mask, sizes, fitted=True)


@torch.no_grad()
def decode_expert(model: nn.Module, expert: int, codes: np.ndarray) -> np.ndarray:
    """Codes [N, L_max] put in `expert`'s slot → its images [N, C, H, W]."""
    experts = generative(model)
    z = torch.zeros(len(codes), len(experts.expert_latent_sizes), codes.shape[1])
    z[:, expert] = torch.as_tensor(codes, dtype=torch.float32)
    with eval_mode(model):
        images = experts.decode_codes(z.to(_device(model)))[:, expert]
    return images.float().cpu().numpy()


def expert_samples(
    model: nn.Module, prior: LatentPrior, expert: int, count: int, seed: int = 0
) -> np.ndarray:
    """`count` images decoded from codes drawn from `expert`'s distribution (paper 001, Fig. 8)."""
    noise = np.random.default_rng(seed).standard_normal((count, prior.mean.shape[1]))
    codes = prior.mean[expert] + noise.astype(np.float32) * prior.std[expert]
    return decode_expert(model, expert, codes)


def walk_values(steps: int) -> np.ndarray:
    return np.linspace(-WALK_RANGE, WALK_RANGE, steps, dtype=np.float32)


def latent_walk(
    model: nn.Module, prior: LatentPrior, expert: int, dim: int, steps: int = 13
) -> tuple[np.ndarray, np.ndarray]:
    """The expert's mean code with dimension `dim` moved from −3 to +3 standard deviations
    (paper 001, Figs. 9–10); the step values and the decoded images [steps, C, H, W]."""
    if not 0 <= dim < prior.sizes[expert]:
        raise ValueError(f"expert {expert} has {prior.sizes[expert]} latent dimensions")
    values = walk_values(steps)
    codes = np.repeat(prior.mean[expert][None], steps, axis=0)
    codes[:, dim] += values * prior.std[expert, dim]
    return values, decode_expert(model, expert, codes)


@torch.no_grad()
def interpolation(
    model: nn.Module, expert: int, start: torch.Tensor, end: torch.Tensor, steps: int = 9
) -> np.ndarray:
    """Two images [C, H, W] encoded by `expert`, the straight line between their codes
    decoded by the same expert: [steps, C, H, W], the ends being its reconstructions."""
    experts = generative(model)
    pair = torch.stack([start, end]).to(_device(model))
    with eval_mode(model):
        codes = experts.expert_codes(pair)[:, expert].float().cpu().numpy()
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    return decode_expert(model, expert, (1 - t) * codes[0] + t * codes[1])


@torch.no_grad()
def all_ones_probe(model: nn.Module, image_shape: tuple[int, int, int]) -> np.ndarray:
    """An image with every pixel at 1 reconstructed by every expert (paper 001, Fig. 7):
    [K + 1, C, H, W], the probe itself first."""
    experts = generative(model)
    probe = torch.ones(1, *image_shape, device=_device(model))
    with eval_mode(model):
        recon = experts.decode_codes(experts.expert_codes(probe))[0]
    return torch.cat([probe, recon]).float().cpu().numpy()
