"""MoA and MoA+: a convolutional gate over M convolutional autoencoder experts (paper 000).

MoA trains on the gate-weighted reconstruction error Σ_k Σ_i p_ik‖X_i − X̂_ik‖², which lets
one expert win everything (expert dominance, NMI ≈ 0.08 in paper 000). MoA+ replaces the
gate probabilities by the minimax weights A = P Γ⁻¹, Γ = PᵀP (paper 000).

Which MoA+ objective trains: paper 000 gives the minimax-weighted loss Σ a_ik‖X_i − X̂_ik‖²
and its bound  ‖Γ⁻¹‖_F · ‖(Σ_i p_ik‖X_i − X̂_ik‖²)_k‖₂  (paper 000, the inequality after the
definition of A; ‖Γ⁻¹‖_F² = Σ_k 1/λ_k² for the symmetric Γ). Both are selectable through
`MoAPlusConfig.objective`. The default is the bound, because it reproduces the paper's
contrast and the weighted sum does not (digits, M=10, seed 0: the weighted sum collapses
to one expert with NMI 0.0, the bound keeps all ten with NMI ≈ 0.73; see
benchmarks/RESULTS.md). Minimizing the bound drives every eigenvalue λ_k of Γ up, which
only balanced, confident gates achieve; the weighted sum has negative weights a_ik that
reward error on some samples and lets one expert take everything. Note: the inequality is
a true upper bound for M = 2 (the paper's setting); for M ≥ 3 it can fail on some P, so
for larger M the "bound" is a balancing surrogate, not a guarantee.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from moa_core.blocks.expert_bank import ConvAutoencoderBank, ConvGate
from moa_core.distributed import global_count, global_sum
from moa_core.models.base import ConfigError, MixtureOutput, ModelConfig
from moa_core.models.registry import register

OBJECTIVES = ("bound", "weighted")


@dataclass
class MoAConfig(ModelConfig):
    """MoA hyperparameters; `num_clusters` is M, the number of autoencoder experts."""

    model_type: ClassVar[str] = "moa"
    input_kind: ClassVar[str] = "image"
    lesson: ClassVar[str] = "train"  # the Train page's lesson, assets/lessons/train.md
    num_clusters: int = 10
    latent_dim: int = 16
    expert_channels: tuple = (16, 32)
    gate_channels: tuple = (16, 32)

    def __post_init__(self) -> None:
        if self.num_clusters < 1 or self.latent_dim < 1:
            raise ConfigError(f"{self.model_type}: num_clusters and latent_dim must be ≥ 1")
        if self.in_channels < 1 or self.image_size < 1:
            raise ConfigError(f"{self.model_type}: in_channels and image_size must be ≥ 1")
        # Checked here, not only in the bank, so a bad `--set` is a one-line ConfigError.
        for key in ("expert_channels", "gate_channels"):
            depth = len(getattr(self, key))
            if depth == 0:
                raise ConfigError(f"{self.model_type}: '{key}' needs at least one layer width")
            if self.image_size % 2**depth:
                raise ConfigError(
                    f"{self.model_type}: image size {self.image_size} is not divisible by "
                    f"{2**depth}, as {depth} stride-2 layers in '{key}' need"
                )


@dataclass
class MoAPlusConfig(MoAConfig):
    """MoA+ adds the minimax objective and the ridge ε that keeps Γ + εnI invertible."""

    model_type: ClassVar[str] = "moa_plus"
    objective: str = "bound"
    gamma_eps: float = 1e-2

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"moa_plus: objective must be one of {', '.join(OBJECTIVES)}")
        if self.gamma_eps <= 0:
            raise ConfigError("moa_plus: gamma_eps must be > 0")


def reconstruction_errors(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """Per-sample, per-expert mean squared error ‖X_i − X̂_ik‖² / pixels, shape [n, M]."""
    return (recon - x.unsqueeze(1)).pow(2).flatten(2).mean(2)


def gram_matrix(gate_probs: torch.Tensor, eps: float) -> torch.Tensor:
    """Γ = PᵀP + ε n I (paper 000); the ridge scales with batch size n like Γ itself. A batch
    statistic: training on several processes, PᵀP and n are summed over every shard."""
    m = gate_probs.shape[1]
    eye = torch.eye(m, device=gate_probs.device, dtype=gate_probs.dtype)
    n = global_count(gate_probs.shape[0])
    return global_sum(gate_probs.T @ gate_probs) + eps * n * eye


def minimax_weights(gate_probs: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """A = P Γ⁻¹, the minimax weights of paper 000 (n×M, solved, not inverted)."""
    gamma = gram_matrix(gate_probs, eps)
    return torch.linalg.solve(gamma, gate_probs.T).T


def moa_loss(gate_probs: torch.Tensor, errors: torch.Tensor) -> torch.Tensor:
    """Σ_k p_ik‖X_i − X̂_ik‖² averaged over the batch (paper 000, MoA)."""
    return (gate_probs * errors).sum(1).mean()


def moa_plus_weighted_loss(gate_probs: torch.Tensor, errors: torch.Tensor, eps: float):
    """Σ_i Σ_k a_ik‖X_i − X̂_ik‖² with A = P Γ⁻¹ (paper 000, MoA+ loss); ≈ M·error when balanced.
    A sum over the batch: a shard's part is scaled by global n / its n, so that its share of
    the global batch (the Trainer's weight) gives back its part (×1 in one process)."""
    n = gate_probs.shape[0]
    return (minimax_weights(gate_probs, eps) * errors).sum() * (global_count(n) / n)


def moa_plus_bound_loss(gate_probs: torch.Tensor, errors: torch.Tensor, eps: float):
    """‖Γ⁻¹‖_F · ‖(Σ_i p_ik‖X_i − X̂_ik‖²)_k‖₂, the upper bound in paper 000.

    ‖Γ⁻¹‖_F = sqrt(Σ_k 1/λ_k²) without an eigendecomposition, whose gradient is unstable
    when eigenvalues coincide. Balanced gates (Γ ≈ n/M·I) give M × the mean error; a
    collapsed gate leaves some λ_k ≈ εn and the loss explodes, which is what balances MoA+.
    """
    gamma = gram_matrix(gate_probs, eps)
    inv_norm = torch.linalg.matrix_norm(torch.linalg.inv(gamma))
    per_expert = global_sum((gate_probs * errors).sum(0))  # every shard: the global value
    return inv_norm * per_expert.norm()


class MixtureOfAutoencoders(nn.Module):
    """Gate + expert bank; the loss depends on whether the config is MoA or MoA+."""

    variational = False  # plain autoencoders: codes have no prior (a `GenerativeExperts`)

    def __init__(self, config: MoAConfig) -> None:
        super().__init__()
        self.config = config
        m = config.num_clusters
        self.experts = ConvAutoencoderBank(
            m, config.in_channels, config.image_size, config.expert_channels, config.latent_dim
        )
        self.gate = ConvGate(m, config.in_channels, config.image_size, config.gate_channels)

    @property
    def expert_latent_sizes(self) -> tuple[int, ...]:
        return (self.config.latent_dim,) * self.config.num_clusters

    def expert_codes(self, x: torch.Tensor) -> torch.Tensor:
        return self.experts.encode(x)

    def decode_codes(self, z: torch.Tensor) -> torch.Tensor:
        return self.experts.decode(z)

    def gate_scores(self, x: torch.Tensor) -> torch.Tensor:
        """The gate's logits alone: what `forward` returns as `gate_logits`, without every
        expert decoding the batch (the maximization engine's fast path)."""
        return self.gate(x)

    def forward(self, x: torch.Tensor) -> MixtureOutput:
        gate_logits = self.gate(x)
        gate_probs = gate_logits.softmax(-1)
        codes, recon = self.experts(x)
        errors = reconstruction_errors(x, recon)
        loss = self._loss(gate_probs, errors)
        return MixtureOutput(
            loss=loss,
            gate_probs=gate_probs,
            latents=codes.flatten(1),
            reconstructions=recon,
            loss_terms={"reconstruction": moa_loss(gate_probs, errors).detach()},
            gate_logits=gate_logits,
        )

    def _loss(self, gate_probs: torch.Tensor, errors: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if not isinstance(cfg, MoAPlusConfig):
            return moa_loss(gate_probs, errors)
        # Γ is solved in float32 even under bf16 autocast: it is M×M and ill-conditioned.
        p32, e32 = gate_probs.float(), errors.float()
        if cfg.objective == "bound":
            return moa_plus_bound_loss(p32, e32, cfg.gamma_eps)
        return moa_plus_weighted_loss(p32, e32, cfg.gamma_eps)


register(MoAConfig, MixtureOfAutoencoders)
register(MoAPlusConfig, MixtureOfAutoencoders)
