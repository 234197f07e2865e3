"""Multi-path networks with learned routing, and their single-path baseline (paper 003, ch. 3, 5).

A BaseCNN-like classifier: blocks of two 3×3 convolutions and a 2×2 max pool, then two
hidden dense layers and the class layer, every layer run in `paths` parallel copies whose
class scores are averaged at the end (paper 003, Sec. 3.4.1). Routing layers join the paths:

- `multipath_cc`: a one-to-many cross-connection at the input, then one after every block and
  after the first dense layer (paper 003, Fig. 3.4; the paper puts them after the pools in its
  visualized VGG13-2-CC, Sec. 3.5, as here).
- `multipath_cp`: cross-predictions replace the first convolution of every block and the second
  dense layer (paper 003, Fig. 3.2).
- `singlepath`: one path whose widths are scaled until its parameter count equals that of the
  `match` network at `paths` paths, the equal-budget baseline. Any config with a `match` is
  resolved when it is made: the saved config holds the widths actually built.

Gate regularization (paper 003, Sec. 5.1): the paper treats a gate's path allocation as a soft
clustering of its inputs and adds the neural-EM loss of paper 004 (Eq. 6) to every gating
network, weighted by `gate_reg` (0.01 in the paper). Here that gating network is the neural
mixture of paper 004: its scores are normalized over the batch (paper 004, Eq. 2; running
statistics for inference) and the gate is their softmax, the mixture's posterior. This reading
is ours: the EM loss of normalized scores cannot move the raw scores' offsets, so on plain
softmax(A_i) gates it could not un-skew a gate. `gate_norm` separates the two parts
(benchmarks/dead_gates.py measures both); `gate_reg=0` gives the paper's plain gates
(Eq. 3.5). Cluster priors are uniform, as in paper 004; the learned priors paper 003 mentions
for uneven gate clusters are not implemented.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from moa_core import distributed
from moa_core.blocks.em import em_loss, gamma_for_batch
from moa_core.blocks.routing import (
    CrossConnection,
    CrossPrediction,
    ParallelConv,
    ParallelDense,
    Routing,
    RoutingLayer,
    parallel_max_pool,
)
from moa_core.models.base import ConfigError, MixtureOutput, ModelConfig
from moa_core.models.registry import register

GATE_NORMS = ("auto", "on", "off")


@dataclass
class MultipathConfig(ModelConfig):
    """A BaseCNN-like classifier with `paths` parallel paths; `routing` says how they meet."""

    model_type: ClassVar[str] = "multipath_cc"
    routing: ClassVar[str] = "cc"
    input_kind: ClassVar[str] = "image"
    lesson: ClassVar[str] = "train_routing"
    uses_labels: ClassVar[bool] = True
    train_defaults: ClassVar[dict] = {"lr": 1e-3, "epochs": 15}
    ablation: ClassVar[tuple[str, dict]] = ("without gate regularization", {"gate_reg": 0.0})
    num_classes: int = 10
    paths: int = 2
    conv_channels: tuple = (16, 32, 64)  # one width per block of two convolutions
    dense_units: int = 64
    gate_hidden: int = 16  # width of W1 in every gate (paper 003, Eq. 3.4)
    gate_reg: float = 0.01  # weight of the neural-EM loss on the gates (paper 003, Sec. 5.1)
    # Gates from batch-normalized scores (a neural mixture's posteriors): auto = with gate_reg.
    gate_norm: str = "auto"
    batch_norm: bool = True
    # "multipath_cc" or "multipath_cp": scale the widths to that network's parameter count.
    match: str = ""

    def __post_init__(self) -> None:
        name = self.model_type
        if self.match and self.match not in ROUTED_CONFIGS:
            raise ConfigError(f"{name}: match must be multipath_cc, multipath_cp or empty")
        if self.num_classes < 2:
            raise ConfigError(f"{name}: needs at least 2 classes, got {self.num_classes}")
        if self.paths < 2:
            raise ConfigError(f"{name}: paths must be ≥ 2 (routing needs paths to route between)")
        if self.dense_units < 1 or self.gate_hidden < 1 or self.in_channels < 1:
            raise ConfigError(f"{name}: dense_units, gate_hidden and in_channels must be ≥ 1")
        if self.gate_reg < 0:
            raise ConfigError(f"{name}: gate_reg must be ≥ 0 (0 turns it off)")
        if self.gate_norm not in GATE_NORMS:
            raise ConfigError(f"{name}: gate_norm must be one of {', '.join(GATE_NORMS)}")
        blocks = len(self.conv_channels)
        if blocks == 0 or self.image_size < 2**blocks:
            raise ConfigError(
                f"{name}: {blocks} pooled blocks need images of at least {2**blocks} pixels and "
                f"at least one block; got {self.image_size}"
            )
        if self.match:  # resolve now, so a saved config holds the widths actually built
            resolved = matched_widths(self)
            self.conv_channels, self.dense_units = resolved.conv_channels, resolved.dense_units
            self.match = ""

    @property
    def normalized_gates(self) -> bool:
        return self.gate_norm == "on" or (self.gate_norm == "auto" and self.gate_reg > 0)


@dataclass
class MultipathCPConfig(MultipathConfig):
    model_type: ClassVar[str] = "multipath_cp"
    routing: ClassVar[str] = "cp"


@dataclass
class SinglePathConfig(MultipathConfig):
    """One path, by default as many parameters as `multipath_cc` at `paths` paths."""

    model_type: ClassVar[str] = "singlepath"
    routing: ClassVar[str] = "none"
    ablation: ClassVar[tuple[str, dict] | None] = None
    match: str = "multipath_cc"


ROUTED_CONFIGS: dict[str, type[MultipathConfig]] = {
    "multipath_cc": MultipathConfig,
    "multipath_cp": MultipathCPConfig,
}


class PathFlatten(nn.Module):
    def forward(self, paths: torch.Tensor) -> torch.Tensor:
        return paths.flatten(2)


class ParallelPool(nn.Module):
    def forward(self, paths: torch.Tensor) -> torch.Tensor:
        return parallel_max_pool(paths)


def body_stages(config: MultipathConfig, paths: int) -> list[nn.Module]:
    """Every layer up to the last hidden dense one, routing layers in the paper's places."""
    kind, hidden, norm = config.routing, config.gate_hidden, config.normalized_gates
    stages: list[nn.Module] = []
    if kind == "cc":
        stages.append(
            CrossConnection("CC 0: input → paths", 1, paths, config.in_channels, hidden, norm)
        )
    width, sources = config.in_channels, 1 if kind == "cp" else paths
    for block, out_width in enumerate(config.conv_channels, start=1):
        if kind == "cp":
            name = f"CP {block}: conv {2 * block - 1} (C{out_width})"
            stages.append(
                CrossPrediction(name, sources, paths, width, out_width, hidden, True, norm)
            )
        else:
            stages.append(ParallelConv(paths, width, out_width, config.batch_norm))
        stages += [ParallelConv(paths, out_width, out_width, config.batch_norm), ParallelPool()]
        if kind == "cc":
            stages.append(
                CrossConnection(f"CC {block}: block {block}", paths, paths, out_width, hidden, norm)
            )
        width, sources = out_width, paths
    side = config.image_size // 2 ** len(config.conv_channels)
    units = config.dense_units
    stages += [PathFlatten(), ParallelDense(paths, width * side * side, units)]
    if kind == "cc":
        stages.append(
            CrossConnection(
                f"CC {len(config.conv_channels) + 1}: dense 1", paths, paths, units, hidden, norm
            )
        )
    if kind == "cp":
        name = f"CP {len(config.conv_channels) + 1}: dense 2 (F{units})"
        stages.append(CrossPrediction(name, paths, paths, units, units, hidden, False, norm))
    else:
        stages.append(ParallelDense(paths, units, units))
    return stages


def parameter_count(config: MultipathConfig) -> int:
    """Parameters of the network `config` builds, counted without allocating or seeding."""
    with torch.device("meta"):
        return sum(p.numel() for p in MultipathNet(config).parameters())


def matched_widths(config: MultipathConfig) -> MultipathConfig:
    """`config` with conv_channels and dense_units scaled by one factor so the network has the
    parameter count of its `match` network (bisection on the factor)."""
    if not config.match:
        return config
    target_config = ROUTED_CONFIGS[config.match](
        **{k: v for k, v in config.to_dict().items() if k not in ("model_type", "match")}
    )
    target = parameter_count(target_config)

    def scaled(factor: float) -> MultipathConfig:
        return replace(
            config,
            match="",
            conv_channels=tuple(max(1, round(c * factor)) for c in config.conv_channels),
            dense_units=max(1, round(config.dense_units * factor)),
        )

    low, high = 1 / 16, 1.0
    while parameter_count(scaled(high)) < target:
        high *= 2
        if high > 64:
            raise ConfigError(
                f"{config.model_type}: cannot reach {config.match}'s {target} parameters"
            )
    for _ in range(20):
        middle = (low + high) / 2
        low, high = (middle, high) if parameter_count(scaled(middle)) < target else (low, middle)
    best = min((scaled(low), scaled(high)), key=lambda c: abs(parameter_count(c) - target))
    return best


class MultipathNet(nn.Module):
    """The classifier; forward returns class scores, the hidden features and every gate."""

    def __init__(self, config: MultipathConfig) -> None:
        super().__init__()
        self.config = config
        self.paths = 1 if config.routing == "none" else config.paths
        self.body = nn.ModuleList(body_stages(config, self.paths))
        self.head = ParallelDense(self.paths, config.dense_units, config.num_classes, last=True)

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None) -> MixtureOutput:
        paths = x.unsqueeze(1)  # one tensor; the first routing layer (or path) takes it from here
        routings: list[Routing] = []
        for stage in self.body:
            if isinstance(stage, RoutingLayer):
                paths, routing = stage(paths)
                routings.append(routing)
            else:
                paths = stage(paths)
        logits = self.head(paths).mean(1)  # the parallel outputs are averaged (Sec. 3.1)
        terms = {"gate_em": gate_regularization(routings)}
        if targets is not None:
            terms["cross_entropy"] = F.cross_entropy(logits, targets)
        loss = (
            terms.get("cross_entropy", logits.new_zeros(()))
            + self.config.gate_reg * terms["gate_em"]
        )
        return MixtureOutput(
            loss=loss,
            gate_probs=logits.softmax(1),
            latents=paths.mean(1),
            loss_terms=terms,
            gate_logits=logits,
            class_logits=logits,
            routing=routings,
        )

    def parallel_layers(self) -> dict[str, torch.Tensor]:
        """Each parallel forward layer's weights, `[paths, weights]`, by its place in the
        network, e.g. "layer 4 (conv, 9216 weights per path)" (paper 003, Fig. 3.10)."""
        result = {}
        no_depth = PathFlatten | ParallelPool | CrossConnection  # cross-connections add no depth
        stages = [s for s in (*self.body, self.head) if not isinstance(s, no_depth)]
        for depth, stage in enumerate(stages, start=1):
            if isinstance(stage, ParallelConv | ParallelDense):
                kind = "conv" if isinstance(stage, ParallelConv) else "dense"
                width = stage.path_weights().shape[1]
                result[f"layer {depth} ({kind}, {width} weights per path)"] = stage.path_weights()
        return result


def gate_regularization(routings: list[Routing]) -> torch.Tensor:
    """Σ over gate vectors of the neural-EM loss on their batch-normalized scores (paper 003,
    Sec. 5.1 with paper 004, Eq. 6); 0 for a batch of one or a network without gates."""
    total = torch.zeros(())
    for routing in routings:
        scores = routing.scores  # [B, m, n]; already normalized when the gates are
        inputs = scores.shape[1]
        mean, var, batch = distributed.global_mean_var(scores, [0])  # of the global batch
        if batch < 2:
            continue
        a_star = (scores - mean) / (var + 1e-5).sqrt()
        rows = a_star.flatten(0, 1)  # every (sample, input) pair is one EM row
        loss = em_loss(rows, gamma_for_batch(batch), rows.softmax(-1))
        total = total.to(scores.device) + inputs * loss  # the batch mean, summed over inputs
    return total


register(MultipathConfig, MultipathNet)
register(MultipathCPConfig, MultipathNet)
register(SinglePathConfig, MultipathNet)
