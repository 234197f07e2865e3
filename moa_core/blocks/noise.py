"""Seeded noise for models: reparametrization and Gumbel draws that repeat with the run's seed.

`train.run.prepare` seeds torch's global RNG with the run's seed (under a lock) and builds
the model; `SeededNoise` takes one number from that RNG at construction and seeds its own
generators with it (one per device). Drawing from the global RNG during training instead
would make a run's noise depend on whatever else the process drew before (another job's
model, a page's sampling), so a seeded run would not repeat.
"""

from __future__ import annotations

import torch

from moa_core import distributed


class SeededNoise:
    """Standard normal and Gumbel noise from a per-device `torch.Generator`."""

    def __init__(self) -> None:
        # device="cpu": checkpoint loading builds models under torch.device("meta").
        self.seed = int(torch.randint(0, 2**62, (), device="cpu"))
        self._generators: dict[torch.device, torch.Generator] = {}

    def generator(self, device: torch.device) -> torch.Generator:
        if device not in self._generators:
            self._generators[device] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[device]

    def normal_like(self, t: torch.Tensor) -> torch.Tensor:
        """ε ~ N(0, I) shaped like `t` (the reparametrization z = μ + σε); rows are samples,
        drawn for the global batch under several processes."""
        total, start = distributed.global_rows(len(t))
        drawn = torch.randn(
            (total, *t.shape[1:]),
            generator=self.generator(t.device),
            device=t.device,
            dtype=t.dtype,
        )
        return distributed.shard_rows(drawn, len(t), start)

    def gumbel_like(self, t: torch.Tensor) -> torch.Tensor:
        """G = −log(−log U) ~ Gumbel(0, 1) (paper 002, §6.1), drawn as −log E with E ~ Exp(1)
        (−log U is Exp(1)), exactly as `torch.nn.functional.gumbel_softmax` draws it."""
        total, start = distributed.global_rows(len(t))
        exponential = t.new_empty((total, *t.shape[1:])).exponential_(
            generator=self.generator(t.device)
        )
        return -distributed.shard_rows(exponential, len(t), start).log()


def gumbel_softmax(log_alpha: torch.Tensor, tau: float, gumbel: torch.Tensor) -> torch.Tensor:
    """Soft Gumbel-softmax sample Z = softmax((log α + G)/τ) (paper 002, §6.1, E7).

    The same formula as `F.gumbel_softmax(log_alpha, tau)` (soft, not straight-through, as
    [REPO]), with the noise G passed in: F.gumbel_softmax draws G from torch's global RNG,
    which a seeded run must not touch (see the module docstring). G = 0 gives the noiseless
    softmax(log α/τ), which evaluation uses.
    """
    return ((log_alpha + gumbel) / tau).softmax(-1)
