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
from moa_core.data.dataset import Dataset
from moa_core.data.regression import attach_targets


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
    # Regression families (paper 002's gated experts) get the batch's target vectors
    # (`Dataset.targets`, attached by `attach_targets`) as forward's second argument.
    uses_targets: ClassVar[bool] = False
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

    @classmethod
    def needs_held_out(cls) -> bool:
        """Supervised families (classifiers, regressors) are scored on samples they never
        trained on (`labelled_splits`); clustering families on their training samples."""
        return cls.uses_labels or cls.uses_targets

    def prepare_dataset(self, dataset: Dataset) -> Dataset:
        """What the model trains and is scored on: `dataset` itself, or for a regression
        family the same samples with its seeded per-class targets (`output_dim` and
        `target_seed` fields; paper 002, §8.2 and spec §2.1). Every caller goes through here,
        so the Trainer, `moa eval` and the pages never name a model."""
        if not self.uses_targets:
            return dataset
        fields = self.to_dict()  # a regression config carries both (common contract)
        return attach_targets(dataset, fields["output_dim"], fields["target_seed"])


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
    # Regressors only: the gated prediction ŷ = Σ_k g_k(x) f_k(x) [B, out] (paper 002, §4.1).
    predictions: torch.Tensor | None = None


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


@runtime_checkable
class ClusterPrior(Protocol):
    """Generative experts with a learned prior per cluster, z | c=k ~ N(μ_k, σ²_k) (paper 002's
    VaDE and DMVAE): a cluster's samples come from that prior, not from N(0, I) nor from a
    Gaussian fitted to codes (paper 002, Figs. 6, 7, 10, 11)."""

    def cluster_prior_moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Means and standard deviations of every cluster's codes, [K, L] each."""
        ...

    def sample_cluster_codes(
        self, n: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """n codes per cluster [n, K, L], for `GenerativeExperts.decode_codes`."""
        ...

    def code_moments(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x)'s mean and standard deviation [B, L]."""
        ...
