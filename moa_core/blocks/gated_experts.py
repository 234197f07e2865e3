"""K affine regression experts and the mixture-of-experts likelihood (paper 002, §4.1, §7).

Expert k maps the flattened input x to W_k x + b_k (§8.2: "each expert was fixed to be an
affine transformation"; [REPO]: on raw x, not on z). With unit-variance Gaussian experts
(Γ_k = I) the gated likelihood is P[y|x] = Σ_k g_k(x) N(y | W_k x + b_k, I) (E8).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class AffineExperts(nn.Module):
    """All K experts as one matmul: x [B, D] → outputs [B, out, K] (spec §5.1, check 10).

    [REPO] draws W_k ~ N(0, 1) and b_k = 0. Here W_k ~ N(0, 1/D) [REC]: with N(0, 1) a
    784-pixel image gives initial outputs of size ≈ ‖x‖ ≈ 10, residuals whose ½‖·‖² differ
    by tens between experts, so exp(−½‖y − ŷ_k‖²) underflows for all but one expert and
    only that one learns; at 1/√D the outputs start at the size of one pixel (and of a
    point's coordinate for 2-D data, where 1/√2 ≈ 0.7 is near [REPO]'s 1 anyway).
    """

    def __init__(self, num_experts: int, in_features: int, out_features: int) -> None:
        super().__init__()
        std = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.randn(num_experts, out_features, in_features) * std)
        self.bias = nn.Parameter(torch.zeros(num_experts, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, out, d = self.weight.shape
        flat = x @ self.weight.reshape(k * out, d).T + self.bias.reshape(k * out)
        return flat.reshape(len(x), k, out).transpose(1, 2)


def mixture_nll(
    log_gates: torch.Tensor, expert_outputs: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """−log P[y|x] = −logsumexp_k(log g_k − ½‖y − ŷ_k‖²) per sample, without the constant
    ½·out·log 2π (spec §1.4 [REC]; [REPO] put the batch sum inside the log, a quirk not kept).

    log_gates [B, K], expert_outputs [B, out, K], targets [B, out] → [B].
    """
    squared = (targets.unsqueeze(-1) - expert_outputs).pow(2).sum(1)  # [B, K]
    return -(log_gates - 0.5 * squared).logsumexp(-1)


def gated_prediction(gates: torch.Tensor, expert_outputs: torch.Tensor) -> torch.Tensor:
    """ŷ = Σ_k g_k(x) (W_k x + b_k) (paper 002, §4.1; §7 "avoiding sampling"): [B, out]."""
    return torch.einsum("bok,bk->bo", expert_outputs, gates)
