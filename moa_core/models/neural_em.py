"""Neural mixture EM: a network whose K output neurons are cluster densities (paper 004).

The network g gives K relevance scores a_i = g(x_i). Each score is normalized over the batch,
a*_ij = (a_ij − μ_j)/σ_j, with no affine parameters (they could undo it) and running
statistics for inference. Then h_j(x) = sigmoid(a*_j/γ) is cluster j's density and
p = softmax(a*) the posterior (paper 004, Sec. 5 and 6). Normalization keeps the batch mean of
every h_j near 0.5 (Eq. 3), so all densities share one integral (Eq. 5) and no cluster can
take every sample; `normalize=False` removes it to show the collapse (paper 004, Fig. 5).

The forward pass is the E-step; a gradient step on L = −1/n Σ_i Σ_j p_ij log h_j(x_i) with p
held constant is the M-step (Eq. 6). Images add the augmented batch's log-likelihood (Eq. 7)
and, in `two_fold` mode, a second optimizer's step on KL(p‖q) between the posteriors of the
original and the augmented images (Eq. 8, Algorithm 1).

Learning rates: the paper trains images 250 epochs with Adam 5e-5 (EM) and 1e-4 (consistency).
A CPU lesson has ~15 epochs, so EM runs at 1e-3 here; at that rate the paper's 2× ratio for
the consistency step hurt (digits, 15 epochs, seed 0: ACC 0.54 vs 0.85 for EM only), while
0.25× helped (0.85), hence `consistency_lr_scale = 0.25`; `--set consistency_lr_scale=2`
gives the paper's ratio (see benchmarks/RESULTS.md, em_images).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from moa_core import distributed
from moa_core.blocks.augment import AugmentSettings, SeededAugmenter, sobel_planes
from moa_core.blocks.em import PAPER_BATCH, em_loss, gamma_for_batch
from moa_core.blocks.relevance_norm import RelevanceNorm
from moa_core.models.base import ConfigError, MixtureOutput, ModelConfig, TrainPhase
from moa_core.models.registry import register

MODES = ("em_only", "two_fold")
INPUT_KINDS = ("image", "points")


@dataclass
class NeuralEMConfig(ModelConfig):
    """Neural EM hyperparameters; `input_kind` picks the paper's MLP (points) or CNN (images)."""

    model_type: ClassVar[str] = "neural_em"
    input_kinds: ClassVar[tuple[str, ...]] = INPUT_KINDS
    lesson: ClassVar[str] = "train_neural_em"
    train_defaults: ClassVar[dict] = {"batch_size": PAPER_BATCH, "lr": 1e-3}
    # The paper's key idea switched off, for side-by-side runs (paper 004, Fig. 5a, Table 1).
    ablation: ClassVar[tuple[str, dict]] = ("without normalization", {"normalize": False})
    input_kind: str = "image"
    in_features: int = 2
    num_clusters: int = 10
    hidden_units: tuple = (32, 32)  # MLP 2→32→32→K (paper 004, Sec. 8.1)
    conv_channels: tuple = (64, 128, 256)  # C64 M C128 M C256 F32 FK (paper 004, Table 2)
    fc_units: int = 32
    normalize: bool = True
    gamma: float = 0.0  # 0: derived from the training batch size, γ = 5 at 128
    mode: str = "auto"  # em_only | two_fold; auto: two_fold for images, em_only for points
    consistency_lr_scale: float = 0.25  # paper: 2 (1e-4 vs 5e-5); see the module docstring
    sobel: bool = True
    momentum: float = 0.1  # running statistics of the relevance normalization
    max_rotation: float = 15.0
    max_shift: float = 0.1
    max_scale: float = 0.1
    max_jitter: float = 0.2

    def __post_init__(self) -> None:
        name = self.model_type
        if self.input_kind not in INPUT_KINDS:
            raise ConfigError(f"{name}: input_kind must be one of {', '.join(INPUT_KINDS)}")
        if self.mode == "auto":
            self.mode = "two_fold" if self.input_kind == "image" else "em_only"
        if self.mode not in MODES:
            raise ConfigError(f"{name}: mode must be one of {', '.join(MODES)}")
        if self.mode == "two_fold" and self.input_kind != "image":
            raise ConfigError(f"{name}: two_fold needs images to augment; use mode=em_only")
        if min(self.num_clusters, self.in_features, self.fc_units, self.in_channels) < 1:
            raise ConfigError(f"{name}: num_clusters, in_features, fc_units must be ≥ 1")
        if not self.conv_channels or not self.hidden_units:
            raise ConfigError(f"{name}: conv_channels and hidden_units need at least one width")
        pools = len(self.conv_channels) - 1
        if self.input_kind == "image" and self.image_size % 2**pools:
            raise ConfigError(
                f"{name}: image size {self.image_size} is not divisible by {2**pools}, "
                f"as {pools} max-pooling layers in 'conv_channels' need"
            )
        if self.gamma < 0 or self.consistency_lr_scale <= 0 or not 0 < self.momentum <= 1:
            raise ConfigError(f"{name}: gamma ≥ 0, consistency_lr_scale > 0, 0 < momentum ≤ 1")
        # A scale range of 1 or more could zoom by 0 (a singular affine map, NaN images).
        ranges = (self.max_rotation, self.max_shift, self.max_scale, self.max_jitter)
        if min(ranges) < 0 or self.max_scale >= 1 or self.max_jitter > 1:
            raise ConfigError(
                f"{name}: augmentation ranges must be ≥ 0, with max_scale < 1 and max_jitter ≤ 1"
            )

    @property
    def augment(self) -> AugmentSettings:
        return AugmentSettings(self.max_rotation, self.max_shift, self.max_scale, self.max_jitter)


def consistency_loss(p: torch.Tensor, q_scores: torch.Tensor) -> torch.Tensor:
    """KL(p‖q) = Σ_j p_j log(p_j/q_j), batch mean, p constant, q = softmax(q_scores) (Eq. 8)."""
    p = p.detach()
    return (p * (p.clamp_min(1e-12).log() - q_scores.log_softmax(1))).sum(1).mean()


def mlp_backbone(config: NeuralEMConfig) -> tuple[nn.Module, int]:
    widths = (config.in_features, *config.hidden_units)
    layers: list[nn.Module] = []
    for cin, cout in zip(widths[:-1], widths[1:], strict=True):
        layers += [nn.Linear(cin, cout), nn.ReLU()]
    return nn.Sequential(*layers), widths[-1]


def conv_backbone(config: NeuralEMConfig) -> tuple[nn.Module, int]:
    """Paper 004, Table 2 (MNIST): 3×3 convs with max-pooling between them, then F32."""
    widths = (2 if config.sobel else config.in_channels, *config.conv_channels)
    layers: list[nn.Module] = []
    for index, (cin, cout) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
        if index < len(config.conv_channels) - 1:
            layers.append(nn.MaxPool2d(2))
    side = config.image_size // 2 ** (len(config.conv_channels) - 1)
    flat = widths[-1] * side * side
    layers += [nn.Flatten(), nn.Linear(flat, config.fc_units), nn.ReLU()]
    return nn.Sequential(*layers), config.fc_units


class NeuralEM(nn.Module):
    """g(x) → K relevance scores; cluster densities, posteriors and the EM losses."""

    def __init__(self, config: NeuralEMConfig) -> None:
        super().__init__()
        self.config = config
        images = config.input_kind == "image"
        self.backbone, features = conv_backbone(config) if images else mlp_backbone(config)
        self.head = nn.Linear(features, config.num_clusters)  # θ_j: one neuron per cluster
        self.relevance_norm = RelevanceNorm(config.num_clusters, config.normalize, config.momentum)
        # γ at inference is the training batch's (the largest batch seen, so the short last
        # batch of an epoch does not lower it); saved with the weights.
        self.register_buffer("reference_batch", torch.tensor(0, dtype=torch.long))
        self.augment = SeededAugmenter(config.augment)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.input_kind == "image" and self.config.sobel:
            x = sobel_planes(x)
        return self.backbone(x)

    def relevance(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(penultimate features, relevance scores a = g(x)) before any normalization."""
        features = self.features(x)
        return features, self.head(features)

    def gate_scores(self, x: torch.Tensor) -> torch.Tensor:
        """The relevance scores a = g(x): `forward`'s `gate_logits`, without the loss."""
        return self.relevance(x)[1]

    def gamma(self, n: int) -> float:
        if self.config.gamma > 0:
            return self.config.gamma
        if self.training:
            n = distributed.global_count(n)  # the global batch's under several processes
            self.reference_batch.fill_(max(int(self.reference_batch), n))
            return gamma_for_batch(n)
        return gamma_for_batch(max(int(self.reference_batch), 1))

    def cluster_density(self, x: torch.Tensor) -> torch.Tensor:
        """h_j(x) = sigmoid(a*_j/γ) for every cluster, [N, K] (paper 004, Sec. 5)."""
        a_star = self.relevance_norm(self.relevance(x)[1])
        return torch.sigmoid(a_star / self.gamma(len(x)))

    def forward(self, x: torch.Tensor) -> MixtureOutput:
        features, a = self.relevance(x)
        a_star = self.relevance_norm(a)
        posterior = a_star.softmax(1)  # p = softmax(a*) (paper 004, Sec. 6)
        return MixtureOutput(
            loss=em_loss(a_star, self.gamma(len(x)), posterior),
            gate_probs=posterior,
            latents=features,
            gate_logits=a,
        )

    def train_phases(self) -> tuple[TrainPhase, ...]:
        em = TrainPhase("em")
        if self.config.mode == "two_fold":
            return (em, TrainPhase("consistency", self.config.consistency_lr_scale))
        return (em,)

    def phase_losses(self, x: torch.Tensor) -> Iterator[torch.Tensor]:
        """One loss per phase; each is computed after the previous phase's optimizer step."""
        if self.config.input_kind != "image":
            yield self(x).loss  # Eq. 6: vector data is not augmented (paper 004, Sec. 8.1)
            return
        with torch.no_grad():
            augmented = self.augment(x)
        a_star = self.relevance_norm(self.relevance(x)[1])
        aug_star = self.relevance_norm(self.relevance(augmented)[1])
        gamma = self.gamma(len(x))
        posterior = a_star.softmax(1)
        yield em_loss(a_star, gamma, posterior) + em_loss(aug_star, gamma, posterior)  # Eq. 7
        if self.config.mode == "two_fold":
            with torch.no_grad():  # fresh posteriors from the updated θ, held constant
                fresh = self.relevance_norm(self.relevance(x)[1]).softmax(1)
            aug_scores = self.relevance_norm(self.relevance(augmented)[1])
            yield consistency_loss(fresh, aug_scores)  # Eq. 8


register(NeuralEMConfig, NeuralEM)
