"""M convolutional autoencoders in one module: every layer is a grouped convolution.

Expert k owns channel group k of every layer, so one conv call runs all experts at once
(DESIGN.md: no Python loop over experts in the hot path). `split()` gives the same experts
as M separate modules, for the per-expert baseline and for per-expert inspection.
"""

from __future__ import annotations

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


class ConvAutoencoderBank(nn.Module):
    """M conv autoencoders (stride-2 convs down, a per-expert dense code, transposed convs up).

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
        groups: int | None = None,
    ) -> None:
        super().__init__()
        m = num_experts if groups is None else groups
        self.num_experts, self.in_channels, self.latent_dim = m, in_channels, latent_dim
        side = _check_image_size(image_size, len(channels))
        widths = (in_channels, *channels)
        enc: list[nn.Module] = []
        for cin, cout in zip(widths[:-1], widths[1:], strict=True):
            enc += [_down(cin, cout, m), nn.ReLU()]
        # A full-size kernel on the last feature map is a dense layer per expert.
        enc.append(nn.Conv2d(channels[-1] * m, latent_dim * m, side, groups=m))
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim * m, channels[-1] * m, side, groups=m),
            nn.ReLU(),
        ]
        rev = widths[::-1]
        for i, (cin, cout) in enumerate(zip(rev[:-1], rev[1:], strict=True)):
            dec += [_up(cin, cout, m), nn.Sigmoid() if i == len(rev) - 2 else nn.ReLU()]
        self.decoder = nn.Sequential(*dec)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        codes = self.encoder(x.repeat(1, self.num_experts, 1, 1))
        return codes.view(batch, self.num_experts, self.latent_dim)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        batch = codes.shape[0]
        images = self.decoder(codes.reshape(batch, -1, 1, 1))
        return images.view(batch, self.num_experts, self.in_channels, *images.shape[-2:])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        codes = self.encode(x)
        return codes, self.decode(codes)

    def split(self) -> list[ConvAutoencoderBank]:
        """The M experts as separate single-expert banks holding copies of the same weights."""
        experts = []
        for k in range(self.num_experts):
            single = _empty_like_single(self)
            for src, dst in zip(self.modules(), single.modules(), strict=True):
                if isinstance(src, nn.Conv2d | nn.ConvTranspose2d):
                    _copy_group(src, dst, k, self.num_experts)
            experts.append(single)
        return experts


def _empty_like_single(bank: ConvAutoencoderBank) -> ConvAutoencoderBank:
    """A one-expert bank with the same layer shapes (weights overwritten by `split`)."""
    convs = [m for m in bank.encoder if isinstance(m, nn.Conv2d)][:-1]
    channels = tuple(c.out_channels // bank.num_experts for c in convs)
    image_size = bank.encoder[-1].kernel_size[0] * 2 ** len(channels)
    return ConvAutoencoderBank(1, bank.in_channels, image_size, channels, bank.latent_dim)


def _copy_group(src: nn.Module, dst: nn.Module, k: int, groups: int) -> None:
    """Copy group k of a grouped (transposed) conv into an ungrouped one of the same shape."""
    w_rows = src.weight.shape[0] // groups
    b_rows = src.bias.shape[0] // groups
    with torch.no_grad():
        dst.weight.copy_(src.weight[k * w_rows : (k + 1) * w_rows])
        dst.bias.copy_(src.bias[k * b_rows : (k + 1) * b_rows])


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
