"""Image pre-processing for neural-EM clustering: Sobel planes and per-sample augmentation.

Both run on the batch's device inside the model, so training data never leaves the GPU.
torchvision's `transforms.v2` draws one set of random parameters per call, i.e. one angle
for a whole batch; here every image gets its own crop/shift, rotation, scale, brightness
and contrast from one `affine_grid` + `grid_sample` call (paper 004, Sec. 7 lists them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from moa_core import distributed

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def sobel_planes(x: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] → [N, 2, H, W]: horizontal and vertical Sobel edges of the grayscale image.

    Paper 004, Sec. 8.2: colour is dropped and the network sees edges, so it cannot cluster
    by colour or brightness alone.
    """
    gray = x.mean(1, keepdim=True)
    kernel = _SOBEL_X.to(device=x.device, dtype=x.dtype)
    weight = torch.stack([kernel, kernel.T]).unsqueeze(1)
    return F.conv2d(gray, weight, padding=1)


@dataclass(frozen=True)
class AugmentSettings:
    """Largest random change per image: degrees, fraction of the side, scale and intensity."""

    max_rotation: float = 15.0
    max_shift: float = 0.1
    max_scale: float = 0.1
    max_jitter: float = 0.2


def augment_batch(
    x: torch.Tensor, settings: AugmentSettings, generator: torch.Generator
) -> torch.Tensor:
    """A randomly transformed copy of every image in `x` (values stay in [0, 1]).

    A scale above 1 zooms in, which is a random crop resized back to the full image. Under
    several processes each image gets what it would get in the one-process global batch.
    """
    n = x.shape[0]
    total, start = distributed.global_rows(n)

    def uniform(*shape: int) -> torch.Tensor:
        drawn = torch.rand(total, *shape[1:], generator=generator, device=x.device)
        return distributed.shard_rows(drawn, n, start) * 2 - 1

    angle = uniform(n) * math.radians(settings.max_rotation)
    zoom = 1 + uniform(n) * settings.max_scale
    shift = uniform(n, 2) * 2 * settings.max_shift  # affine_grid coordinates span [-1, 1]
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    moved = F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)
    brightness = 1 + uniform(n, 1, 1, 1) * settings.max_jitter
    contrast = 1 + uniform(n, 1, 1, 1) * settings.max_jitter
    mean = moved.mean((1, 2, 3), keepdim=True)
    return ((moved - mean) * contrast + mean * brightness).clamp(0.0, 1.0)


class SeededAugmenter:
    """`augment_batch` with its own random stream, seeded from the RNG a model is built with
    (so augmentation repeats with the seed) and following the batch's device."""

    def __init__(self, settings: AugmentSettings) -> None:
        self.settings = settings
        self._seed = int(torch.randint(0, 2**62, (), device="cpu"))
        self._generator: torch.Generator | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self._generator is None or self._generator.device != x.device:
            self._generator = torch.Generator(device=x.device).manual_seed(self._seed)
        return augment_batch(x, self.settings, self._generator)
