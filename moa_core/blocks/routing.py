"""Routing layers between parallel paths, and the parallel forward layers they join (paper 003,
ch. 3).

A layer of m parallel tensors is one tensor `[B, m, C, H, W]` (convolutional) or `[B, m, F]`
(dense). Every input X_i computes a gate vector G_i = softmax(W2 ReLU(W1 GAP(X_i))) over the n
outputs (paper 003, Eq. 3.3–3.5); the gate weights of all m inputs are stacked, so no Python
loop runs over paths. Each routing layer returns its output together with a `Routing` record
(gates, pre-softmax scores, tensor strengths), so figures never hook into a network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from moa_core.blocks.relevance_norm import RelevanceNorm


@dataclass
class Routing:
    """What one routing layer did to a batch."""

    name: str
    gates: torch.Tensor  # [B, m, n]: g_ij, each row a softmax (paper 003, Eq. 3.5)
    scores: torch.Tensor  # [B, m, n]: a_ij, the relevance scores before softmax (Eq. 3.4)
    input_strength: torch.Tensor  # [B, m]: mean |X_i|
    output_strength: torch.Tensor  # [B, n]: mean |Y_j|


def tensor_strength(paths: torch.Tensor) -> torch.Tensor:
    """Mean absolute activation of each parallel tensor, `[B, m, ...]` → `[B, m]`."""
    return paths.abs().flatten(2).mean(2)


def _uniform(*shape: int, fan_in: int) -> nn.Parameter:
    """nn.Linear's default initialization, for stacked weights."""
    bound = 1.0 / math.sqrt(fan_in)
    return nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))


class GateBank(nn.Module):
    """Relevance scores A_i = W2^i ReLU(W1^i Z_i) of m inputs over n outputs (paper 003,
    Eq. 3.3–3.4); Z_i is the global average pool of X_i, or X_i itself when it is a vector.

    With `normalize`, each score is normalized over the batch (no affine, running statistics
    for inference), so the gate is the posterior of a neural mixture model that clusters the
    gate's inputs (paper 003, Sec. 5.1 with paper 004, Eq. 2).
    """

    def __init__(
        self, inputs: int, channels: int, outputs: int, hidden: int, normalize: bool = False
    ) -> None:
        super().__init__()
        self.norm = RelevanceNorm(inputs * outputs, enabled=normalize, momentum=0.1)
        self.w1 = _uniform(inputs, channels, hidden, fan_in=channels)
        self.b1 = _uniform(inputs, hidden, fan_in=channels)
        self.w2 = _uniform(inputs, hidden, outputs, fan_in=hidden)
        self.b2 = _uniform(inputs, outputs, fan_in=hidden)

    def forward(self, paths: torch.Tensor) -> torch.Tensor:
        z = paths.flatten(3).mean(3) if paths.dim() > 3 else paths  # [B, m, C]
        hidden = F.relu(torch.einsum("bmc,mch->bmh", z, self.w1) + self.b1)
        scores = torch.einsum("bmh,mhn->bmn", hidden, self.w2) + self.b2
        return self.norm(scores.flatten(1)).view_as(scores)


class RoutingLayer(nn.Module):
    """What both routing algorithms share: gates from every input (Eq. 3.3–3.5), then `combine`
    builds the outputs; the forward returns them with the layer's `Routing` record."""

    def __init__(self, name: str, gate: GateBank) -> None:
        super().__init__()
        self.name = name
        self.gate = gate

    def combine(self, paths: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, paths: torch.Tensor) -> tuple[torch.Tensor, Routing]:
        scores = self.gate(paths)
        gates = scores.softmax(-1)
        out = self.combine(paths, gates)
        strengths = tensor_strength(paths), tensor_strength(out)
        return out, Routing(self.name, gates, scores, *strengths)


class CrossConnection(RoutingLayer):
    """Y_j = Σ_i g_ij X_i (paper 003, Eq. 3.7, Algorithm 2): no weights besides the gates, so
    it adds no depth. With one input it is the one-to-many connector at a network's start."""

    def __init__(
        self,
        name: str,
        inputs: int,
        outputs: int,
        channels: int,
        hidden: int,
        normalize: bool = False,
    ) -> None:
        super().__init__(name, GateBank(inputs, channels, outputs, hidden, normalize))

    def combine(self, paths: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bmn,bm...->bn...", gates, paths)


class CrossPrediction(RoutingLayer):
    """Y_j = ReLU(Σ_i g_ij U_ij), U_ij = W_ij X_i + b_ij (paper 003, Eq. 3.1 and 3.6,
    Algorithm 1). U is one grouped 3×3 convolution (group i holds X_i's n predictions), or one
    stacked dense map for vectors."""

    def __init__(
        self,
        name: str,
        inputs: int,
        outputs: int,
        in_width: int,
        out_width: int,
        hidden: int,
        conv: bool,
        normalize: bool = False,
    ) -> None:
        super().__init__(name, GateBank(inputs, in_width, outputs, hidden, normalize))
        self.outputs = outputs
        if conv:
            self.predict = nn.Conv2d(
                inputs * in_width, inputs * outputs * out_width, 3, padding=1, groups=inputs
            )
        else:
            self.weight = _uniform(inputs, outputs, in_width, out_width, fan_in=in_width)
            self.bias = _uniform(inputs, outputs, out_width, fan_in=in_width)
        self.conv = conv

    def predictions(self, paths: torch.Tensor) -> torch.Tensor:
        """U: `[B, m, n, ...]`, every input's prediction of every output."""
        b, m = paths.shape[:2]
        if self.conv:
            u = self.predict(paths.flatten(1, 2))
            return u.view(b, m, self.outputs, -1, *u.shape[-2:])
        return torch.einsum("bmc,mnco->bmno", paths, self.weight) + self.bias

    def combine(self, paths: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        return F.relu(torch.einsum("bmn,bmn...->bn...", gates, self.predictions(paths)))


class ParallelConv(nn.Module):
    """P independent 3×3 convolutions (→ BatchNorm) → ReLU, one per path, as one grouped conv."""

    def __init__(self, paths: int, in_width: int, out_width: int, batch_norm: bool) -> None:
        super().__init__()
        self.paths = paths
        self.conv = nn.Conv2d(paths * in_width, paths * out_width, 3, padding=1, groups=paths)
        self.norm = nn.BatchNorm2d(paths * out_width) if batch_norm else nn.Identity()

    def forward(self, paths: torch.Tensor) -> torch.Tensor:
        b, p = paths.shape[:2]
        out = F.relu(self.norm(self.conv(paths.flatten(1, 2))))
        return out.view(b, p, -1, *out.shape[-2:])

    def path_weights(self) -> torch.Tensor:
        """`[P, weights]`: each path's own filters (paper 003, Fig. 3.10)."""
        return self.conv.weight.detach().reshape(self.paths, -1)


class ParallelDense(nn.Module):
    """P independent dense layers, one per path, as one stacked weight; ReLU unless `last`."""

    def __init__(self, paths: int, in_width: int, out_width: int, last: bool = False) -> None:
        super().__init__()
        self.weight = _uniform(paths, in_width, out_width, fan_in=in_width)
        self.bias = _uniform(paths, out_width, fan_in=in_width)
        self.last = last

    def forward(self, paths: torch.Tensor) -> torch.Tensor:
        out = torch.einsum("bpi,pio->bpo", paths, self.weight) + self.bias
        return out if self.last else F.relu(out)

    def path_weights(self) -> torch.Tensor:
        return self.weight.detach().flatten(1)


def parallel_max_pool(paths: torch.Tensor) -> torch.Tensor:
    """2×2 max pooling of every path at once."""
    b, p = paths.shape[:2]
    out = F.max_pool2d(paths.flatten(1, 2), 2)
    return out.view(b, p, -1, *out.shape[-2:])
