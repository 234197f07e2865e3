"""The neural-EM loss on batch-normalized relevance scores (paper 004, Sec. 5 and Eq. 6), with
the temperature γ it needs: shared by neural EM's clusters and the routing gates' regularizer
(paper 003, Sec. 5.1)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

PAPER_GAMMA, PAPER_BATCH = 5.0, 128


def normalized_score_bound(n: int) -> float:
    """Largest |a*| a batch of n can hold when σ is the batch's 1/n standard deviation: √(n − 1).

    Paper 004, Sec. 5 quotes (n − 1)/√n after [26], which is the bound for the (n − 1)
    sample standard deviation; its own normalization (and BatchNorm's) divides by the 1/n
    one, whose bound is √(n − 1): 11.27 rather than 11.23 at n = 128.
    """
    return math.sqrt(n - 1)


def gamma_for_batch(n: int) -> float:
    """γ that keeps every a*/γ in the sigmoid's near-linear region for a batch of n.

    Paper 004, Sec. 5: γ = 5 at n = 128. γ scales with the bound on |a*| so every batch size
    keeps the paper's margin (|a*/γ| ≤ 2.25); it is never below 1.
    """
    return max(1.0, PAPER_GAMMA * normalized_score_bound(n) / normalized_score_bound(PAPER_BATCH))


def cluster_log_density(a_star: torch.Tensor, gamma: float) -> torch.Tensor:
    """log h_ij = log sigmoid(a*_ij/γ) (paper 004, Sec. 5)."""
    return F.logsigmoid(a_star / gamma)


def em_loss(a_star: torch.Tensor, gamma: float, posterior: torch.Tensor) -> torch.Tensor:
    """−1/n Σ_i Σ_j p_ij log sigmoid(a*_ij/γ) with p held constant (paper 004, Eq. 6)."""
    return -(posterior.detach() * cluster_log_density(a_star, gamma)).sum(1).mean()
