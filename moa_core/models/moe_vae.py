"""MoE-VAE: K convolutional VAE experts and a manager (paper 001, Sec. III.A).

The manager gives each sample importances p_ik (softmax). Each expert is a dynamic
convolutional VAE (`blocks.dynamic_conv`, Sec. III.C); the K experts run as one bank, and
experts with different latent sizes share one padded latent of the largest size whose unused
dimensions are masked out of the code, the decoder input and the KL (no loop over K).

Loss (paper 001, Eq. 3–6): L = R + αS + βB with
  R = 1/η Σ_i Σ_k p_ik d(x_i, x̂_ik), d = per-pixel binary cross-entropy + KL / pixels
      (the paper's "loss … coupled with a normalized KL loss term"),
  S = −1/η Σ_i Σ_k p_ik log p_ik (sample entropy: confident assignments),
  B = Σ_k p̂_k log p̂_k, p̂ the batch mean of p (negative batch entropy: balanced experts),
α = 100 and β = 1 as in the paper (Sec. IV.D).

This module trains with a fixed K and no pretraining (the paper's Fig. 2 alone); the
pretraining pipeline that finds K and the latent sizes builds on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from moa_core import distributed
from moa_core.blocks.augment import AugmentSettings, SeededAugmenter
from moa_core.blocks.dynamic_conv import DynamicDecoder, DynamicEncoder, block_plan
from moa_core.blocks.expert_bank import StackedLinear
from moa_core.blocks.noise import SeededNoise
from moa_core.models.base import ConfigError, MixtureOutput, ModelConfig
from moa_core.models.registry import register

# Paper 001, Sec. IV.B: "a rotation range of 10 degrees …, a zoom range of 0.1 and width and
# height shift ranges of 0.1"; no brightness change.
PAPER_AUGMENTATION = AugmentSettings(
    max_rotation=10.0, max_shift=0.1, max_scale=0.1, max_jitter=0.0
)


@dataclass
class MoEVAEConfig(ModelConfig):
    """K VAE experts (`latent_sizes`: one size for all, or one per expert) and a manager."""

    model_type: ClassVar[str] = "moe_vae"
    input_kind: ClassVar[str] = "image"
    lesson: ClassVar[str] = "train_moe_vae"
    train_defaults: ClassVar[dict] = {"batch_size": 100, "lr": 1e-3}
    num_clusters: int = 10
    latent_sizes: tuple = (16,)
    base_filters: int = 8  # filters of the first block, doubling per block (paper: D)
    alpha: float = 100.0  # weight of the sample entropy S (paper 001, Sec. IV.D)
    beta: float = 1.0  # weight of the batch entropy term B
    augment: bool = True  # rotations ≤ 10°, zoom and shifts ≤ 0.1 while training (Sec. IV.B)

    def __post_init__(self) -> None:
        name = self.model_type
        if self.num_clusters < 1 or self.base_filters < 1:
            raise ConfigError(f"{name}: num_clusters and base_filters must be ≥ 1")
        if len(self.latent_sizes) not in (1, self.num_clusters):
            raise ConfigError(
                f"{name}: latent_sizes needs one size or one per expert "
                f"({self.num_clusters}), got {len(self.latent_sizes)}"
            )
        if self.alpha < 0 or self.beta < 0:
            raise ConfigError(f"{name}: alpha and beta must be ≥ 0")
        if self.image_size < 4:
            raise ConfigError(f"{name}: images must be at least 4×4, got {self.image_size}")

    @property
    def expert_latent_sizes(self) -> tuple[int, ...]:
        sizes = self.latent_sizes
        return tuple(sizes) * self.num_clusters if len(sizes) == 1 else tuple(sizes)


def sample_entropy(p: torch.Tensor) -> torch.Tensor:
    """S = −1/η Σ_i Σ_k p_ik log p_ik (paper 001, Eq. 4)."""
    return -(p * p.clamp_min(1e-12).log()).sum(1).mean()


def batch_entropy_term(p: torch.Tensor) -> torch.Tensor:
    """B = Σ_k p̂_k log p̂_k with p̂ the batch mean of p (paper 001, Eq. 5); minimizing it
    spreads the batch over the experts."""
    mean = distributed.global_sum(p.sum(0)) / distributed.global_count(len(p))
    return (mean * mean.clamp_min(1e-12).log()).sum()


class MoEVAE(nn.Module):
    variational = True  # experts are VAEs: codes follow N(0, I) (a `GenerativeExperts`)

    def __init__(self, config: MoEVAEConfig) -> None:
        super().__init__()
        self.config = config
        k, sizes = config.num_clusters, config.expert_latent_sizes
        plan = block_plan(config.image_size, config.base_filters)
        self.encoder = DynamicEncoder(config.in_channels, plan, experts=k)
        self.decoder = DynamicDecoder(config.in_channels, plan, config.image_size, experts=k)
        features, widest = self.encoder.out_features, max(sizes)
        self.to_stats = StackedLinear(k, features, 2 * widest)  # μ and log σ² per expert
        self.from_code = StackedLinear(k, widest, features)
        mask = torch.arange(widest)[None, :] < torch.tensor(sizes)[:, None]
        self.register_buffer("latent_mask", mask.float(), persistent=False)
        self.manager = nn.Sequential(
            DynamicEncoder(config.in_channels, plan), nn.Flatten(), nn.Linear(features, k)
        )
        self.augment = SeededAugmenter(PAPER_AUGMENTATION)
        self.noise = SeededNoise()  # reparametrization noise that repeats with the seed

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """μ and log σ² [B, K, L_max], zero beyond each expert's own latent size."""
        mu, logvar = self.to_stats(self.encoder(x)).chunk(2, dim=-1)
        return mu * self.latent_mask, logvar * self.latent_mask

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes [B, K, L_max] → images [B, K, C, H, W]; unused dimensions are ignored."""
        return self.decoder(self.from_code(z * self.latent_mask))

    @property
    def expert_latent_sizes(self) -> tuple[int, ...]:
        return self.config.expert_latent_sizes

    def expert_codes(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)[0]

    def decode_codes(self, z: torch.Tensor) -> torch.Tensor:
        return self.decode(z)

    def gate_scores(self, x: torch.Tensor) -> torch.Tensor:
        """The manager's logits alone (what `forward` computes from un-augmented images in
        eval mode), without the experts' encode and decode."""
        return self.manager(x)

    def forward(self, x: torch.Tensor) -> MixtureOutput:
        if self.training and self.config.augment:
            with torch.no_grad():
                x = self.augment(x)  # every expert reconstructs the augmented image
        logits = self.manager(x)
        p = logits.softmax(1)
        mu, logvar = self.encode(x)
        z = mu + self.noise.normal_like(mu) * (0.5 * logvar).exp() if self.training else mu
        recon = self.decode(z)
        pixels = x[0].numel()
        bce = (
            F.binary_cross_entropy(recon, x.unsqueeze(1).expand_as(recon), reduction="none")
            .flatten(2)
            .mean(2)
        )
        kl = 0.5 * ((mu.pow(2) + logvar.exp() - 1 - logvar) * self.latent_mask).sum(2)
        distance = bce + kl / pixels  # d(x_i, x̂_ik), [B, K]
        terms = {
            "reconstruction": (p * distance).sum(1).mean(),  # R, Eq. 3
            "sample_entropy": sample_entropy(p),  # S, Eq. 4
            "batch_entropy": batch_entropy_term(p),  # B, Eq. 5
        }
        cfg = self.config
        loss = terms["reconstruction"] + cfg.alpha * terms["sample_entropy"]
        loss = loss + cfg.beta * terms["batch_entropy"]  # Eq. 6
        chosen = p.argmax(1)
        return MixtureOutput(
            loss=loss,
            gate_probs=p,
            latents=mu[torch.arange(len(x)), chosen],
            reconstructions=recon,
            loss_terms=terms,
            gate_logits=logits,
        )


register(MoEVAEConfig, MoEVAE)
