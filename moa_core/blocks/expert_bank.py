"""M convolutional autoencoders in one module: one kernel call per layer runs every expert.

Expert k owns channel group k of every conv layer and slice k of every stacked weight
(DESIGN.md: no Python loop over experts in the hot path). The first conv is one dense conv
with M·c₁ filters, because all experts read the same image; later convs are grouped; the
dense code layers are stacked weights applied with one batched matmul, which CPUs run 2–3×
faster than the equivalent full-kernel grouped conv. Conv activations are channels-last,
which oneDNN and cuDNN run faster for grouped convs (see benchmarks/expert_bank.py).
`split()` gives the same experts as M separate modules, for the per-expert baseline and for
inspecting one expert.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _down(cin: int, cout: int, groups: int) -> nn.Conv2d:
    return nn.Conv2d(cin * groups, cout * groups, 4, stride=2, padding=1, groups=groups)


def _up(cin: int, cout: int, groups: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin * groups, cout * groups, 4, stride=2, padding=1, groups=groups)


def _check_image_size(image_size: int, depth: int) -> int:
    factor = 2**depth
    if image_size % factor:
        raise ValueError(f"image size {image_size} must be divisible by {factor}")
    return image_size // factor


class StackedLinear(nn.Module):
    """M independent linear maps [B, M, F] → [B, M, D] with weights stacked as [M, F, D]."""

    def __init__(self, num_experts: int, in_features: int, out_features: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)  # nn.Linear's default initialization
        self.weight = nn.Parameter(
            torch.empty(num_experts, in_features, out_features).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(torch.empty(num_experts, 1, out_features).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x.transpose(0, 1), self.weight).transpose(0, 1)


class ConvAutoencoderBank(nn.Module):
    """M conv autoencoders (stride-2 convs down, a dense code per expert, transposed convs up).

    Input [B, C, H, W]; `encode` gives codes [B, M, D]; `decode` maps [B, M, D] to
    reconstructions [B, M, C, H, W] in [0, 1].
    """

    def __init__(
        self,
        num_experts: int,
        in_channels: int,
        image_size: int,
        channels: tuple[int, ...],
        latent_dim: int,
    ) -> None:
        super().__init__()
        m = num_experts
        self.args = (num_experts, in_channels, image_size, tuple(channels), latent_dim)
        self.num_experts, self.in_channels, self.latent_dim = m, in_channels, latent_dim
        self.side = _check_image_size(image_size, len(channels))
        self.feature_shape = (channels[-1], self.side, self.side)
        widths = (in_channels, *channels)
        enc: list[nn.Module] = [
            nn.Conv2d(in_channels, channels[0] * m, 4, stride=2, padding=1),
            nn.ReLU(),
        ]
        for cin, cout in zip(widths[1:-1], widths[2:], strict=True):
            enc += [_down(cin, cout, m), nn.ReLU()]
        self.encoder = nn.Sequential(*enc)
        features = math.prod(self.feature_shape)
        self.to_code = StackedLinear(m, features, latent_dim)
        self.from_code = StackedLinear(m, latent_dim, features)
        dec: list[nn.Module] = [nn.ReLU()]
        rev = widths[::-1]
        for i, (cin, cout) in enumerate(zip(rev[:-1], rev[1:], strict=True)):
            dec += [_up(cin, cout, m), nn.Sigmoid() if i == len(rev) - 2 else nn.ReLU()]
        self.decoder = nn.Sequential(*dec)
        self.to(memory_format=torch.channels_last)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        features = self.encoder(x.contiguous(memory_format=torch.channels_last))
        return self.to_code(features.reshape(batch, self.num_experts, -1))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        batch = codes.shape[0]
        features = self.from_code(codes).reshape(batch, -1, self.side, self.side)
        images = self.decoder(features.contiguous(memory_format=torch.channels_last))
        return images.reshape(batch, self.num_experts, self.in_channels, *images.shape[-2:])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        codes = self.encode(x)
        return codes, self.decode(codes)

    def split(self) -> list[ConvAutoencoderBank]:
        """The M experts as separate single-expert banks holding copies of the same weights."""
        experts = []
        for k in range(self.num_experts):
            single = ConvAutoencoderBank(1, *self.args[1:])
            for src, dst in zip(self.modules(), single.modules(), strict=True):
                if isinstance(src, nn.Conv2d | nn.ConvTranspose2d | StackedLinear):
                    _copy_slice(src, dst, k, self.num_experts)
            experts.append(single)
        return experts


def _copy_slice(src: nn.Module, dst: nn.Module, k: int, groups: int) -> None:
    """Copy expert k's rows of a grouped conv or stacked linear into a one-expert layer."""
    with torch.no_grad():
        for name in ("weight", "bias"):
            whole = getattr(src, name)
            rows = whole.shape[0] // groups
            getattr(dst, name).copy_(whole[k * rows : (k + 1) * rows])


class ConvGate(nn.Module):
    """Convolutional gate: image → M logits (paper 000's trainable gate network)."""

    def __init__(
        self, num_experts: int, in_channels: int, image_size: int, channels: tuple[int, ...]
    ) -> None:
        super().__init__()
        side = _check_image_size(image_size, len(channels))
        widths = (in_channels, *channels)
        layers: list[nn.Module] = []
        for cin, cout in zip(widths[:-1], widths[1:], strict=True):
            layers += [_down(cin, cout, 1), nn.BatchNorm2d(cout), nn.ReLU()]
        layers += [nn.Flatten(), nn.Linear(channels[-1] * side * side, num_experts)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
