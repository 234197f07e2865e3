"""Gate statistics over a dataset: class-wise gate values (paper 003, Fig. 3.9), the most
skewed gate, and one gate's response across runs (Fig. 5.1)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from moa_core.analysis.outputs import collect_outputs
from moa_core.analysis.routing import GateVector
from moa_core.metrics import dead_gate_fraction


@dataclass(frozen=True)
class Gate:
    """One gate g_ij^l: input `source` of routing layer `vector.layer`, towards output `target`."""

    vector: GateVector
    target: int

    @property
    def label(self) -> str:
        return self.vector.gate_label(self.target)

    def values(self, gates: Sequence[np.ndarray]) -> np.ndarray:
        """This gate's value per sample, from `collect_outputs(...).routing_gates`."""
        return gates[self.vector.layer][:, self.vector.source, self.target]


def all_gates(vectors: Sequence[GateVector]) -> list[Gate]:
    return [Gate(v, j) for v in vectors for j in range(v.outputs)]


def routing_gates(model: nn.Module, x: torch.Tensor) -> list[np.ndarray]:
    """Every routing layer's gates over `x` (on the model's device): [N, m, n] per layer."""
    return collect_outputs(model, x).routing_gates


def class_gate_values(
    gates: Sequence[np.ndarray],
    labels: np.ndarray,
    class_names: dict[int, str],
    chosen: Sequence[Gate],
) -> dict[str, dict[str, np.ndarray]]:
    """`result[gate label][class name]`: the gate's values over that class's samples."""
    return {
        gate.label: {
            name: gate.values(gates)[labels == label] for label, name in class_names.items()
        }
        for gate in chosen
    }


def most_skewed_gate(gates: Sequence[np.ndarray], candidates: Sequence[Gate]) -> Gate:
    """The gate whose largest value over the samples is smallest: the one that stays "mostly
    deactivated" without regularization (paper 003, Fig. 5.1)."""
    return min(candidates, key=lambda gate: float(gate.values(gates).max()))


def same_gate_layout(first: Sequence[np.ndarray], second: Sequence[np.ndarray]) -> bool:
    """Whether two runs have the same routing layers and gate vectors (paths, m, n)."""
    return [g.shape[1:] for g in first] == [g.shape[1:] for g in second]


@dataclass
class GateComparison:
    """One gate over the same inputs in several runs (paper 003, Fig. 5.1)."""

    gate: Gate
    responses: dict[str, np.ndarray]  # run label → the gate's value per sampled input
    dead: dict[str, float | None]  # run label → its share of dead gates over all inputs


def compare_gate_runs(
    runs: dict[str, Sequence[np.ndarray]], candidates: Sequence[Gate], samples: int, seed: int = 0
) -> GateComparison:
    """The gate that stays lowest in the run with the most dead gates, and its value in every
    run over one seeded sample of the inputs; runs must share a `same_gate_layout`."""
    dead = {label: dead_gate_fraction(gates) for label, gates in runs.items()}
    worse = max(runs, key=lambda label: dead[label] or 0.0)
    gate = most_skewed_gate(runs[worse], candidates)
    total = len(gate.values(runs[worse]))
    chosen = np.sort(np.random.default_rng(seed).permutation(total)[:samples])
    return GateComparison(
        gate, {label: gate.values(gates)[chosen] for label, gates in runs.items()}, dead
    )
