"""What paper 002's families share: dense networks on flattened inputs, the VAE of VaDE and
DMVAE, and their clusters seen as generative experts.

The authors' networks are dense on the flattened input ([REPO], spec §1.3): 2-D points,
16×16 or 28×28 grey images, or colour images (in_channels × image_size² inputs). The z-encoder
x → 256 → 256 → 512 → (μ̃, log σ̃²) and the decoder z → 512 → 256 → D are [REPO]'s DMVAE sizes,
which VaDE uses too so that the two differ only in how q(c|x) is made (spec §4.1).
Reconstruction: Bernoulli cross-entropy summed over pixels from decoder logits for images,
0.5·Σ(x − x̂)² (unit variance) for points (spec §4.4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from moa_core.blocks.dense import dense_stack
from moa_core.blocks.noise import SeededNoise
from moa_core.models.base import ConfigError, MixtureOutput, ModelConfig

INPUT_KINDS = ("image", "points")


@dataclass
class FlatInputConfig(ModelConfig):
    """A family of dense networks on flattened x; `input_kind` follows the data."""

    input_kinds: ClassVar[tuple[str, ...]] = INPUT_KINDS
    input_kind: str = "image"
    in_features: int = 2  # points only; images have in_channels × image_size² features
    num_clusters: int = 10

    def __post_init__(self) -> None:
        name = self.model_type
        if self.input_kind not in INPUT_KINDS:
            raise ConfigError(f"{name}: input_kind must be one of {', '.join(INPUT_KINDS)}")
        if min(self.num_clusters, self.in_features, self.in_channels, self.image_size) < 1:
            raise ConfigError(
                f"{name}: num_clusters, in_features, in_channels and image_size must be ≥ 1"
            )

    @property
    def data_shape(self) -> tuple[int, ...]:
        """One sample's shape: [C, H, W] for images, [in_features] for points."""
        if self.input_kind == "image":
            return (self.in_channels, self.image_size, self.image_size)
        return (self.in_features,)

    @property
    def data_features(self) -> int:
        return math.prod(self.data_shape)


def check_widths(config: ModelConfig, *names: str) -> None:
    """ConfigError unless every named tuple of layer widths has at least one width."""
    empty = [name for name in names if not getattr(config, name)]
    if empty:
        raise ConfigError(f"{config.model_type}: {', '.join(empty)} need at least one width")


@dataclass
class DenseVAEConfig(FlatInputConfig):
    """The z-encoder and decoder of VaDE and DMVAE ([REPO] sizes, spec §1.3)."""

    latent_dim: int = 10
    encoder_units: tuple = (256, 256, 512)
    decoder_units: tuple = (512, 256)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.latent_dim < 1:
            raise ConfigError(f"{self.model_type}: latent_dim must be ≥ 1")
        check_widths(self, "encoder_units", "decoder_units")


@dataclass
class VAEPass:
    """One encode–sample–decode of a batch: q(z|x)'s μ̃ and log σ̃² [B, L], the code z used,
    the decoder's raw output [B, D] and the reconstruction loss per sample [B]."""

    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor
    output: torch.Tensor
    reconstruction: torch.Tensor


class DenseVAE(nn.Module):
    """q(z|x) = N(μ̃, σ̃² I) from the z-encoder and P[x|z] from the decoder (paper 002, §3)."""

    def __init__(self, config: DenseVAEConfig) -> None:
        super().__init__()
        features, latent = config.data_features, config.latent_dim
        self.images = config.input_kind == "image"
        self.data_shape = config.data_shape
        self.encoder = dense_stack((features, *config.encoder_units, 2 * latent))
        self.decoder = dense_stack((latent, *config.decoder_units, features))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """μ̃ and log σ̃² [B, L] of q(z|x)."""
        mu, logvar = self.encoder(x.flatten(1)).chunk(2, dim=-1)
        return mu, logvar

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        """The decoded mean in the data's shape: sigmoid of the logits for images, the
        output itself for points; z [..., L] → [..., *data_shape]."""
        output = self.decoder(z)
        output = output.sigmoid() if self.images else output
        return output.reshape(*z.shape[:-1], *self.data_shape)

    def reconstruction_loss(self, x: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """−log P[x|z] per sample without constants: Bernoulli CE summed over pixels, or
        0.5·SSE for points (spec §4.4)."""
        target = x.flatten(1)
        if self.images:
            return F.binary_cross_entropy_with_logits(output, target, reduction="none").sum(1)
        return 0.5 * (output - target).pow(2).sum(1)

    def forward(self, x: torch.Tensor, noise: SeededNoise) -> VAEPass:
        """Encode, draw z = μ̃ + σ̃ε in training (z = μ̃ in evaluation), decode."""
        mu, logvar = self.encode(x)
        z = mu + noise.normal_like(mu) * (0.5 * logvar).exp() if self.training else mu
        output = self.decoder(z)
        return VAEPass(mu, logvar, z, output, self.reconstruction_loss(x, output))

    def reconstructions(self, vae_pass: VAEPass) -> torch.Tensor | None:
        """Images [B, 1, C, H, W] (one decoder, so one "expert" column in the live grid);
        None for points, which the grid cannot show."""
        if not self.images:
            return None
        return vae_pass.output.sigmoid().reshape(len(vae_pass.output), 1, *self.data_shape)


class LatentClusters:
    """VaDE's and DMVAE's clusters as generative experts (`GenerativeExperts` and
    `ClusterPrior` of base.py): cluster k is expert k, its code for x is μ̃(x) (one
    z-encoder serves every cluster) and the one decoder decodes every cluster's code.

    `variational = False`: a cluster's codes follow its learned N(μ_k, σ²_k), not N(0, I);
    `cluster_prior_moments` and `sample_cluster_codes` give that prior.
    """

    variational = False
    config: DenseVAEConfig
    vae: DenseVAE

    def cluster_output(
        self,
        vae_pass: VAEPass,
        terms: dict[str, torch.Tensor],
        log_q: torch.Tensor,
        logits: torch.Tensor,
    ) -> MixtureOutput:
        """The forward output both families share: loss = Σ terms, gate q(c|x) = exp(log_q)."""
        return MixtureOutput(
            loss=sum(terms.values()),
            gate_probs=log_q.exp(),
            latents=vae_pass.mu,
            reconstructions=self.vae.reconstructions(vae_pass),
            loss_terms=terms,
            gate_logits=logits,
        )

    prior: nn.Module  # a blocks.gaussian_mixture.GaussianMixturePrior

    @property
    def expert_latent_sizes(self) -> tuple[int, ...]:
        return (self.config.latent_dim,) * self.config.num_clusters

    def expert_codes(self, x: torch.Tensor) -> torch.Tensor:
        """[B, K, L]: μ̃(x) in every cluster's slot."""
        mu = self.vae.encode(x)[0]
        return mu.unsqueeze(1).expand(-1, self.config.num_clusters, -1)

    def decode_codes(self, z: torch.Tensor) -> torch.Tensor:
        """[B, K, L] → decoded means [B, K, *data_shape] (sigmoid means for images)."""
        return self.vae.mean(z)

    def code_moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x)'s mean μ̃ and standard deviation σ̃ [B, L], for reconstructions from a
        sampled z as paper 002 draws them (Figs. 4, 5, 8, 9)."""
        mu, logvar = self.vae.encode(x)
        return mu, (0.5 * logvar).exp()

    def cluster_prior_moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The learned prior's means and standard deviations [K, L]."""
        return self.prior.means, (0.5 * self.prior.logvars).exp()

    def sample_cluster_codes(
        self, n: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """n codes per cluster drawn from z ~ N(μ_k, σ²_k): [n, K, L] (paper 002, Figs. 6, 10)."""
        return self.prior.sample(n, generator)
