"""Routing as the figures read it, for every family: the layers of a multi-path network, or a
mixture's single gate seen as one layer from the input to its experts (paper 003, Sec. 3.5)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from moa_core.analysis.eval_mode import eval_mode
from moa_core.analysis.maximize import ScoreFn
from moa_core.blocks.routing import Routing
from moa_core.data import Dataset
from moa_core.models.base import MixtureOutput

SINGLE_GATE = "gate: input → experts"


def routing_layers(out: MixtureOutput) -> list[Routing]:
    """A network's routing layers; a mixture's gate as one layer (input → experts, output
    strength = gate weight); none for a classifier without routing."""
    if out.routing or out.class_logits is not None:
        return out.routing
    gates = out.gate_probs
    scores = out.gate_logits if out.gate_logits is not None else gates.clamp_min(1e-12).log()
    ones = gates.new_ones(gates.shape[0], 1)
    return [Routing(SINGLE_GATE, gates[:, None], scores[:, None], ones, gates)]


@dataclass
class LayerView:
    """One routing layer for one input, as the diagram draws it (paper 003, Fig. 3.7)."""

    name: str
    gates: np.ndarray  # [m, n]
    scores: np.ndarray  # [m, n], before softmax
    input_strength: np.ndarray  # [m], relative: sums to 1 over the parallel tensors
    output_strength: np.ndarray  # [n], relative


def _relative(strength: torch.Tensor) -> np.ndarray:
    """A tensor's mean activation divided by the sum over the parallel tensors (Sec. 3.5.1)."""
    return (strength / strength.sum(-1, keepdim=True).clamp_min(1e-12)).float().cpu().numpy()


@torch.no_grad()
def routing_views(model: nn.Module, images: torch.Tensor) -> list[list[LayerView]]:
    """Per image of `images` [B, C, H, W] (on the model's device), its routing layers."""
    with eval_mode(model):
        layers = routing_layers(model(images))
    per_layer = [
        (
            layer.name,
            layer.gates.float().cpu().numpy(),
            layer.scores.float().cpu().numpy(),
            _relative(layer.input_strength),
            _relative(layer.output_strength),
        )
        for layer in layers
    ]
    return [
        [LayerView(name, g[b], s[b], i[b], o[b]) for name, g, s, i, o in per_layer]
        for b in range(images.shape[0])
    ]


@dataclass(frozen=True)
class Prediction:
    """What a model makes of one input: a classifier's class, or a mixture's cluster (its gate's
    most probable expert, counted from 1 like the diagram's boxes)."""

    kind: str  # "predicted class" or "cluster"
    name: str
    probability: float

    @property
    def text(self) -> str:
        """Like "predicted class 7 (93 %)"; no-break spaces keep "class 7" and "93 %" whole
        when a narrow column wraps the line."""
        nbsp = "\u00a0"
        what = f"{self.kind} {self.name}".replace(" ", nbsp)
        return f"{what} ({round(100 * self.probability)}{nbsp}%)"


@torch.no_grad()
def predictions(model: nn.Module, images: torch.Tensor, data: Dataset) -> list[Prediction]:
    """Per image of `images` [B, C, H, W] its `Prediction`; a classifier's class k is the k-th
    of `data`'s label values (as `Dataset.class_indices` numbers them), named as in `data`."""
    with eval_mode(model):
        out = model(images.to(next(model.parameters()).device))
    if out.class_logits is None:
        best = out.gate_probs.float().max(1)
        return [
            Prediction("cluster", str(int(k) + 1), float(p))
            for p, k in zip(best.values, best.indices, strict=True)
        ]
    best = torch.softmax(out.class_logits.float(), 1).max(1)
    names = data.names_by_label
    values = data.label_values or tuple(sorted(names))
    return [
        Prediction("predicted class", names.get(values[int(k)], str(values[int(k)])), float(p))
        for p, k in zip(best.values, best.indices, strict=True)
    ]


@dataclass(frozen=True)
class GateVector:
    """G_i^l: the gate vector layer `layer`'s input `source` computes (paper 003, Sec. 3.5.1)."""

    layer: int
    source: int
    layer_name: str
    outputs: int

    @property
    def label(self) -> str:
        return f"G{self.source + 1} of {self.layer_name}"

    def gate_label(self, target: int) -> str:
        """g_ij^l in the paper's notation, with the layer's name."""
        return f"g{self.source + 1}{target + 1} of {self.layer_name}"


@torch.no_grad()
def gate_vectors(model: nn.Module, example: torch.Tensor) -> list[GateVector]:
    """Every gate vector of `model`, found by one eval-mode forward pass on `example`."""
    with eval_mode(model):
        layers = routing_layers(model(example[:2]))
    return [
        GateVector(index, source, layer.name, layer.gates.shape[2])
        for index, layer in enumerate(layers)
        for source in range(layer.gates.shape[1])
    ]


def gate_score_fn(model: nn.Module, vector: GateVector) -> ScoreFn:
    """Images → the pre-softmax scores a_ij of one gate vector, the units to maximize
    (paper 003, Sec. 3.5.2: "maximize the specific gating neuron (prior to softmax)")."""

    def scores(x: torch.Tensor) -> torch.Tensor:
        return routing_layers(model(x))[vector.layer].scores[:, vector.source]

    return scores


@dataclass(frozen=True)
class UnitChoice:
    """A set of units for the maximization engine: a model's outputs or one gate vector."""

    label: str
    vector: GateVector | None = None  # None: the model's own gate/cluster/class outputs
    model: nn.Module | None = None

    @property
    def score_fn(self) -> ScoreFn | None:
        if self.vector is None or self.model is None:
            return None
        return gate_score_fn(self.model, self.vector)

    def row_name(self, unit: int) -> str:
        return f"unit {unit + 1}" if self.vector is None else self.vector.gate_label(unit)


OUTPUT_UNITS = "Output units (clusters or classes)"


def unit_choices(model: nn.Module, example: torch.Tensor) -> list[UnitChoice]:
    """The model's outputs, then every routing gate vector (a mixture's single gate is its
    outputs already, so it is not listed twice)."""
    vectors = [v for v in gate_vectors(model, example) if v.layer_name != SINGLE_GATE]
    return [
        UnitChoice(OUTPUT_UNITS),
        *(UnitChoice(f"Gate vector {v.label}", v, model) for v in vectors),
    ]
