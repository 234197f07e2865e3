"""What every model family shares: a JSON-serializable config and a typed forward output.

The Trainer, the checkpoint code and the pages see models only through these types, so a
new family plugs in by registering a config class and a module (see `registry`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch

from moa_core.blocks.routing import Routing


class ConfigError(ValueError):
    """A config dict that does not describe a valid model (one line, for the CLI and UI)."""


@dataclass
class ModelConfig:
    """Base of every model config: all hyperparameters, JSON in and out (diffusers style)."""

    model_type: ClassVar[str] = ""
    # Training settings the family's paper uses, applied under the user's own overrides.
    train_defaults: ClassVar[dict[str, Any]] = {}
    # Supervised families (the routing classifiers) get the batch's class indices too.
    uses_labels: ClassVar[bool] = False
    in_channels: int = 1
    image_size: int = 16

    def to_dict(self) -> dict[str, Any]:
        return {"model_type": self.model_type, **dataclasses.asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build from a dict, rejecting unknown keys and values of the wrong type."""
        data = {k: v for k, v in data.items() if k != "model_type"}
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ConfigError(f"{cls.model_type}: unknown config key(s) {', '.join(unknown)}")
        defaults = cls()
        for key, value in data.items():
            expected = type(getattr(defaults, key))
            data[key] = coerce_value(cls.model_type, key, value, expected)
        return cls(**data)

    def with_updates(self, **updates: Any) -> ModelConfig:
        """A copy with some fields changed, type-checked like `from_dict`."""
        return type(self).from_dict({**self.to_dict(), **updates})


def coerce_value(owner: str, key: str, value: Any, expected: type) -> Any:
    """Check one setting against the type of its default; JSON gives tuples back as lists."""
    if expected is tuple and isinstance(value, list | tuple):
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
            raise ConfigError(f"{owner}: '{key}' must be a list of positive integers")
        return tuple(value)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if expected is float and isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{owner}: '{key}' must be a finite number, got {value}")
    if expected is bool and not isinstance(value, bool):
        raise ConfigError(f"{owner}: '{key}' must be true or false, got {value!r}")
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(
            f"{owner}: '{key}' must be {expected.__name__}, got {type(value).__name__}"
        )
    return value


@dataclass
class MixtureOutput:
    """What every model's forward returns.

    `gate_probs` is the gate-like output (MoA gate, manager, q(c|x), routing gate) that the
    routing, latent and metric code reads for every family alike.
    """

    loss: torch.Tensor
    gate_probs: torch.Tensor
    latents: torch.Tensor
    reconstructions: torch.Tensor | None = None
    loss_terms: dict[str, torch.Tensor] = field(default_factory=dict)
    # The pre-activation score behind each gate probability (one neuron per cluster), the
    # scalar units the maximization engine ranks images by and synthesizes inputs for.
    gate_logits: torch.Tensor | None = None
    # Classifiers only: the class scores, scored as accuracy instead of clustering.
    class_logits: torch.Tensor | None = None
    # Every routing layer's gates and tensor strengths, in network order (paper 003, ch. 3).
    routing: list[Routing] = field(default_factory=list)


@dataclass(frozen=True)
class TrainPhase:
    """One optimizer's step within a training step (paper 004, Algorithm 1 has two).

    A model with several phases defines `train_phases()` and `phase_loss(x, name)`; the
    Trainer gives each phase its own Adam at `lr_scale` × the learning rate and steps them
    in order on the same batch. Models without `train_phases` train on `forward(x).loss`.
    """

    name: str
    lr_scale: float = 1.0


SINGLE_PHASE = (TrainPhase("loss"),)


def train_phases(model: torch.nn.Module) -> tuple[TrainPhase, ...]:
    phases = getattr(model, "train_phases", None)
    return phases() if phases is not None else SINGLE_PHASE


@runtime_checkable
class GenerativeExperts(Protocol):
    """A mixture whose experts decode codes back to images (MoA, MoE-VAE): what the samples,
    latent walks and interpolations of the experts page need, whatever the family."""

    variational: bool  # True: each expert's codes follow the prior N(0, I)

    @property
    def expert_latent_sizes(self) -> tuple[int, ...]: ...

    def expert_codes(self, x: torch.Tensor) -> torch.Tensor:
        """Images [B, C, H, W] → every expert's code [B, K, L_max] (μ for a VAE)."""
        ...

    def decode_codes(self, z: torch.Tensor) -> torch.Tensor:
        """Codes [B, K, L_max] → every expert's image [B, K, C, H, W]."""
        ...
