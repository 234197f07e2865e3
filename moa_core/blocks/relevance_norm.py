"""Batch normalization of relevance scores, the step that keeps neural mixture EM from
collapsing (paper 004, Eq. 2); shared by neural EM and the regularized routing gates."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from moa_core import distributed


class RelevanceNorm(nn.Module):
    """a* = (a − μ_j)/σ_j per cluster over the batch, no affine, running stats for inference.

    With `enabled=False` it passes a through, the paper's un-normalized ablation.
    """

    def __init__(self, num_clusters: int, enabled: bool, momentum: float) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(num_clusters, affine=False, momentum=momentum)
        self.enabled = enabled

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return a
        if self.training and distributed.global_count(a.shape[0]) < 2:  # no batch statistics
            norm = self.norm
            return F.batch_norm(a, norm.running_mean, norm.running_var, eps=norm.eps)
        return self.norm(a)
