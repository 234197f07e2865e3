"""The Gaussian-mixture latent prior of paper 002 and the closed-form terms built on it.

VaDE (§3) and DMVAE (§6) share one generative story: c ~ Cat(π), z | c=k ~ N(μ_k, diag σ²_k)
(Algorithm 1, E1). This module holds that prior as a learnable module, VaDE's Bayes rule for
q(c|x) (E4), the diagonal-Gaussian KL, DMVAE's relaxed prior P[z|ζ] and the categorical KL to
the uniform prior. All densities are computed in log space (spec §4.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

LOG_2PI = math.log(2 * math.pi)


def gaussian_log_density(
    z: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor
) -> torch.Tensor:
    """log N(z | μ_k, diag σ²_k) for every sample and cluster: z [B, L], μ and log σ² [K, L]
    → [B, K]."""
    z = z.unsqueeze(1)
    squared = (z - means).pow(2) * (-logvars).exp()
    return -0.5 * (LOG_2PI + logvars + squared).sum(-1)


def log_responsibilities(
    z: torch.Tensor, log_weights: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor
) -> torch.Tensor:
    """log γ_k = log q(c=k|x) = log P[c=k] P[ẑ|c=k] − log Σ_k' P[c=k'] P[ẑ|c=k'] for one
    sample ẑ per row (paper 002, §3, E4), via logsumexp rather than [JIANG]'s +1e-10."""
    joint = log_weights + gaussian_log_density(z, means, logvars)
    return joint - joint.logsumexp(-1, keepdim=True)


def gaussian_kl(
    mu: torch.Tensor, logvar: torch.Tensor, prior_mu: torch.Tensor, prior_logvar: torch.Tensor
) -> torch.Tensor:
    """KL(N(μ, diag σ²) ‖ N(m, diag s²)) = ½ Σ_j [log s² − log σ² + (σ² + (μ − m)²)/s² − 1],
    summed over the last axis, broadcasting the rest (paper 002, §6, spec §1.3)."""
    ratio = (logvar - prior_logvar).exp() + (mu - prior_mu).pow(2) * (-prior_logvar).exp()
    return 0.5 * (prior_logvar - logvar + ratio - 1).sum(-1)


def standard_normal_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, diag σ²) ‖ N(0, I)) per sample: the plain VAE's term (VaDE's pretraining)."""
    return gaussian_kl(mu, logvar, torch.zeros_like(mu), torch.zeros_like(logvar))


def relaxed_prior(
    zeta: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """P[z|ζ] = N(Σ_k ζ_k μ_k, diag exp(Σ_k ζ_k log σ²_k)) for relaxed one-hot ζ [B, K]: the
    mean and log-variance [B, L] ([REPO], spec §1.3). A one-hot ζ = e_k gives N(μ_k, σ²_k),
    as the §7 note requires when τ → 0."""
    return zeta @ means, zeta @ logvars


def categorical_kl_to_uniform(log_q: torch.Tensor) -> torch.Tensor:
    """KL(q ‖ U(K)) = Σ_k q_k (log q_k + log K) = log K − H(q) per row (paper 002, §6, E10)."""
    num_clusters = log_q.shape[-1]
    return (log_q.exp() * (log_q + math.log(num_clusters))).sum(-1)


def vade_latent_terms(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    log_gamma: torch.Tensor,
    log_weights: torch.Tensor,
    means: torch.Tensor,
    logvars: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """VaDE's closed-form ELBO terms besides the reconstruction ([JIANG], spec §1.1), per sample:

    Gaussian part ½ Σ_k γ_k Σ_j [log σ²_kj + σ̃²_j/σ²_kj + (μ̃_j − μ_kj)²/σ²_kj]
    − ½ Σ_j (1 + log σ̃²_j), which is Σ_k γ_k KL(q(z|x) ‖ N(μ_k, σ²_k)) since Σ_k γ_k = 1;
    cluster part Σ_k γ_k (log γ_k − log π_k) = KL(γ ‖ π). γ keeps its gradient ([JIANG]).
    """
    per_cluster = gaussian_kl(mu.unsqueeze(1), logvar.unsqueeze(1), means, logvars)  # [B, K]
    gamma = log_gamma.exp()
    return (gamma * per_cluster).sum(-1), (gamma * (log_gamma - log_weights)).sum(-1)


@dataclass(frozen=True)
class MixtureFit:
    """A diagonal Gaussian mixture: weights [K], means and variances [K, L]."""

    weights: np.ndarray
    means: np.ndarray
    variances: np.ndarray


def fit_diagonal_mixture(
    codes: np.ndarray, num_clusters: int, n_init: int, seed: int
) -> MixtureFit:
    """sklearn's GaussianMixture(covariance_type="diag") on codes [N, L], with uniform starting
    weights and 500 EM iterations as the [REPO] notebook (spec §1.1, §4.6)."""
    from sklearn.mixture import GaussianMixture  # sklearn is slow to import; only VaDE needs it

    gmm = GaussianMixture(
        num_clusters,
        covariance_type="diag",
        max_iter=500,
        n_init=n_init,
        weights_init=np.full(num_clusters, 1.0 / num_clusters),
        random_state=seed % 2**32,
    ).fit(codes.astype(np.float64))
    return MixtureFit(gmm.weights_, gmm.means_, gmm.covariances_)


class GaussianMixturePrior(nn.Module):
    """π = softmax(weight logits) on the simplex, μ_k, and σ²_k = exp(log σ²_k) > 0 (spec §4.5).

    `learn_weights=False` keeps π uniform and fixed (DMVAE, spec §1.3). μ starts at
    N(0, mean_std²), log σ² at 0 (σ² = 1).
    """

    def __init__(
        self, num_clusters: int, latent_dim: int, learn_weights: bool, mean_std: float
    ) -> None:
        super().__init__()
        logits = torch.zeros(num_clusters)
        if learn_weights:
            self.weight_logits = nn.Parameter(logits)
        else:
            self.register_buffer("weight_logits", logits, persistent=False)
        self.means = nn.Parameter(torch.randn(num_clusters, latent_dim) * mean_std)
        self.logvars = nn.Parameter(torch.zeros(num_clusters, latent_dim))

    def log_weights(self) -> torch.Tensor:
        return self.weight_logits.log_softmax(-1)

    def log_responsibilities(self, z: torch.Tensor) -> torch.Tensor:
        """log q(c|x) from one latent sample per row (E4)."""
        return log_responsibilities(z, self.log_weights(), self.means, self.logvars)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n codes per cluster, z ~ N(μ_k, σ²_k): [n, K, L]."""
        noise = torch.randn((n, *self.means.shape), generator=generator, device=self.means.device)
        return self.means + noise * (0.5 * self.logvars).exp()

    @torch.no_grad()
    def load_fit(self, fit: MixtureFit) -> None:
        """Copy a fitted mixture's π, μ and σ² into the prior (VaDE's initialisation)."""

        def tensor(values: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(values, dtype=self.means.dtype, device=self.means.device)

        self.weight_logits.copy_(tensor(fit.weights).log())
        self.means.copy_(tensor(fit.means))
        self.logvars.copy_(tensor(fit.variances).log())
