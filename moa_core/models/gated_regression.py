"""Regression mixtures of paper 002, §7–8.2: DVMoE (the DMVAE gate) and the DeepMoE baseline.

Both gate K affine experts W_k x + b_k on the raw flattened input (§8.2, [REPO]) and predict
ŷ = Σ_k g_k(x)(W_k x + b_k) without sampling (§4.1, §7). Training maximises
log P[y|x] = log Σ_k g_k(x) N(y | W_k x + b_k, I) (E8), per sample via logsumexp (spec §4.11):
- DVMoE: g = q(c|x), the DMVAE c-encoder; loss = −log P[y|x] + the DMVAE terms, weight 1
  each (E10, the relaxed objective). Without targets (evaluation) the loss is the DMVAE part.
- DeepMoE: g = softmax of an MLP x → 512 → 256 → K ([REPO]); loss = −log P[y|x] only
  (0 without targets).
The targets are the seeded per-class affine maps of spec §2.1 (`output_dim`, `target_seed`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from moa_core.blocks.dense import dense_stack
from moa_core.blocks.gated_experts import AffineExperts, gated_prediction, mixture_nll
from moa_core.models.base import ConfigError, MixtureOutput
from moa_core.models.dense_vae import FlatInputConfig, check_widths
from moa_core.models.dmvae import DMVAE, PAPER_TRAINING, DMVAEConfig
from moa_core.models.registry import register

# DVMoE trains at batch 100, not [REPO]'s 200: twice the steps in the same 30 epochs. At 200,
# `moa train dvmoe --dataset spiral25k` (output 1, target_seed 0) scored test errors 0.086,
# 0.091 and 0.733 for seeds 0–2 against the constant predictor's 11.23: seed 2's gate merged
# two arms (ACC 0.83) and missed the 5 % target (0.56). At 100, seed 2 scores 0.377 (annealing
# τ by 0.05 per epoch instead: 0.656). DeepMoE keeps [REPO]'s 200 (its gate is not a
# clustering and has no such trap; benchmarks/RESULTS.md, dvmoe_table1).
DVMOE_TRAINING = {**PAPER_TRAINING, "batch_size": 100}


def check_output_dim(model_type: str, output_dim: int) -> None:
    if output_dim < 1:
        raise ConfigError(f"{model_type}: output_dim must be ≥ 1")


@dataclass
class DVMoEConfig(DMVAEConfig):
    """DVMoE: DMVAE's settings plus the regression targets' size and seed."""

    model_type: ClassVar[str] = "dvmoe"
    uses_targets: ClassVar[bool] = True
    train_defaults: ClassVar[dict] = DVMOE_TRAINING
    output_dim: int = 1  # §8.2: "fixed to 1 in all runs"
    target_seed: int = 0  # seed of the per-class affine maps that make the targets
    # [REPO]'s fixed τ = 0.2, not DMVAE's annealing: the regression likelihood also trains
    # the gate, and Table 1's targets are met with it (benchmarks/RESULTS.md, dvmoe_table1).
    tau: float = 0.2
    tau_min: float = 0.05
    tau_anneal_rate: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_output_dim(self.model_type, self.output_dim)


@dataclass
class DeepMoEConfig(FlatInputConfig):
    """DeepMoE: a softmax MLP gate (`gate_units` hidden widths) over the same experts."""

    model_type: ClassVar[str] = "deep_moe"
    uses_targets: ClassVar[bool] = True
    train_defaults: ClassVar[dict] = PAPER_TRAINING  # "the same optimiser and batch" ([REPO])
    gate_units: tuple = (512, 256)
    output_dim: int = 1
    target_seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_widths(self, "gate_units")
        check_output_dim(self.model_type, self.output_dim)


def with_regression(
    out: MixtureOutput, expert_outputs: torch.Tensor, targets: torch.Tensor | None
) -> MixtureOutput:
    """`out` with the gated prediction and, given targets, −log P[y|x] added to its loss."""
    out.predictions = gated_prediction(out.gate_probs, expert_outputs)
    if targets is not None:
        log_gates = out.gate_logits.log_softmax(-1)
        nll = mixture_nll(log_gates, expert_outputs, targets.to(expert_outputs.dtype)).mean()
        out.loss_terms["regression_nll"] = nll
        out.loss = out.loss + nll
    return out


class DVMoE(DMVAE):
    """The DMVAE with K affine experts gated by its q(c|x) (paper 002, §7)."""

    def __init__(self, config: DVMoEConfig) -> None:
        super().__init__(config)
        self.experts = AffineExperts(config.num_clusters, config.data_features, config.output_dim)

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None) -> MixtureOutput:
        return with_regression(super().forward(x), self.experts(x.flatten(1)), targets)


class DeepMoE(nn.Module):
    """Softmax MLP gate + K affine experts, trained on the likelihood alone (paper 002, §8.2)."""

    def __init__(self, config: DeepMoEConfig) -> None:
        super().__init__()
        self.config = config
        features = config.data_features
        self.gate = dense_stack((features, *config.gate_units, config.num_clusters))
        self.experts = AffineExperts(config.num_clusters, features, config.output_dim)

    def gate_scores(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(x.flatten(1))

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None) -> MixtureOutput:
        flat = x.flatten(1)
        hidden = self.gate[:-1](flat)  # the last hidden layer: what the gate's logits read
        logits = self.gate[-1](hidden)
        out = MixtureOutput(
            loss=logits.new_zeros(()),
            gate_probs=logits.softmax(-1),
            latents=hidden,
            gate_logits=logits,
        )
        return with_regression(out, self.experts(flat), targets)


register(DVMoEConfig, DVMoE)
register(DeepMoEConfig, DeepMoE)
