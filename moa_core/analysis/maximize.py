"""The maximization engine: which images a unit likes most and least, and the input it likes best.

A *unit* is one column of a score function, images [N, C, H, W] → scores [N, K]: a cluster
neuron of neural EM, a gate logit of MoA, a routing gate's pre-softmax score (paper 003,
Sec. 3.5.2) or a manager output. The
engine ranks a dataset by it and synthesizes an input by gradient ascent from noise
(paper 004, Fig. 8 and Sec. 8.3: "gradient ascent on the randomly initiated input image to
maximize the corresponding node's response before the activation"). Regularizers keep a
small grayscale image readable rather than adversarial: random jitter, rotation and scale
each step, total variation, an occasional blur, and optionally a Fourier parametrization
whose 1/f scaling favours smooth strokes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from moa_core.analysis.eval_mode import eval_mode
from moa_core.blocks.augment import AugmentSettings, augment_batch

ScoreFn = Callable[[torch.Tensor], torch.Tensor]
Progress = Callable[[int, int], None]


def gate_scores(model: nn.Module) -> ScoreFn:
    """The pre-activation scores behind a model's gate probabilities (its `gate_logits`)."""

    def scores(x: torch.Tensor) -> torch.Tensor:
        out = model(x)
        return out.gate_logits if out.gate_logits is not None else out.gate_probs.log()

    return scores


@dataclass
class Extremes:
    """Per unit, the dataset indices (and scores) of the k highest and k lowest images."""

    top: np.ndarray  # [K, k] indices, best first
    top_scores: np.ndarray
    bottom: np.ndarray  # [K, k] indices, lowest first
    bottom_scores: np.ndarray


@torch.no_grad()
def dataset_scores(score_fn: ScoreFn, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    return torch.cat(
        [score_fn(x[i : i + batch_size]).float() for i in range(0, len(x), batch_size)]
    )


def rank_dataset(scores: torch.Tensor, k: int = 10) -> Extremes:
    """The k images that activate each unit most and least, from `dataset_scores`."""
    k = min(k, scores.shape[0])
    top = scores.topk(k, dim=0)
    bottom = scores.topk(k, dim=0, largest=False)
    return Extremes(
        top=top.indices.T.cpu().numpy(),
        top_scores=top.values.T.cpu().numpy(),
        bottom=bottom.indices.T.cpu().numpy(),
        bottom_scores=bottom.values.T.cpu().numpy(),
    )


@dataclass(frozen=True)
class SynthesisSettings:
    steps: int = 256
    lr: float = 0.05
    jitter: AugmentSettings = AugmentSettings(
        max_rotation=5.0, max_shift=0.06, max_scale=0.05, max_jitter=0.0
    )
    tv_weight: float = 0.02  # total variation: neighbouring pixels agree
    blur_every: int = 16  # blur the image every this many steps (0: never)
    fourier: bool = False
    seed: int = 0


@dataclass
class Synthesis:
    """Synthesized images [U, C, H, W] in [0, 1], and each unit's activation at every step."""

    images: np.ndarray
    history: np.ndarray  # [steps + 1, U]: activation of the clean image, step 0 = the noise
    final_scores: np.ndarray  # [U]


class _ImageParam(nn.Module):
    """An image batch as free parameters; pixels = sigmoid(param), so they stay in (0, 1).

    With `fourier`, the parameters are the image's spectrum scaled by 1/frequency, so the
    optimizer moves low frequencies (strokes) more easily than high ones (noise).
    """

    def __init__(self, shape: tuple[int, ...], fourier: bool, generator: torch.Generator):
        super().__init__()
        self.shape, self.fourier = shape, fourier
        height, width = shape[-2:]
        if fourier:
            fy = torch.fft.fftfreq(height)[:, None]
            fx = torch.fft.rfftfreq(width)[None, :]
            freq = torch.sqrt(fx**2 + fy**2).clamp_min(1.0 / max(height, width))
            self.register_buffer("scale", 1.0 / (freq * max(height, width)))
            spectrum = torch.randn(*shape[:-2], height, width // 2 + 1, 2, generator=generator)
            self.param = nn.Parameter(spectrum * 0.01)
        else:
            self.param = nn.Parameter(torch.randn(*shape, generator=generator) * 0.1)

    def forward(self) -> torch.Tensor:
        if not self.fourier:
            return torch.sigmoid(self.param)
        spectrum = torch.view_as_complex(self.param) * self.scale
        return torch.sigmoid(torch.fft.irfft2(spectrum, s=self.shape[-2:], norm="ortho") * 4)


def total_variation(images: torch.Tensor) -> torch.Tensor:
    dx = (images[..., :, 1:] - images[..., :, :-1]).abs().mean()
    dy = (images[..., 1:, :] - images[..., :-1, :]).abs().mean()
    return dx + dy


def _blur_now(settings: SynthesisSettings, step: int) -> bool:
    """Every `blur_every` steps, but not in the last stretch: the final image is sharpened by
    the ascent again, since a blur lowers the activation it just reached."""
    every = settings.blur_every
    if not every or settings.fourier:
        return False
    return step % every == 0 and step <= settings.steps - every


def _blur_param(param: torch.Tensor) -> None:
    """A 3×3 box blur applied to pixel-space parameters in place."""
    flat = param.data.reshape(-1, 1, *param.shape[-2:])
    blurred = F.avg_pool2d(F.pad(flat, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    param.data.copy_(blurred.reshape(param.shape))


def synthesize(
    score_fn: ScoreFn,
    units: list[int],
    image_shape: tuple[int, int, int],
    settings: SynthesisSettings = SynthesisSettings(),
    device: str | torch.device = "cpu",
    progress: Progress | None = None,
) -> Synthesis:
    """One input per unit, all optimized together: image u ascends the score of `units[u]`.

    The model behind `score_fn` must be in eval mode (the caller's job) so batch statistics
    do not mix the images. Deterministic for `settings.seed`. `progress(step, steps)` is
    called after every step.
    """
    generator = torch.Generator().manual_seed(settings.seed)
    image = _ImageParam((len(units), *image_shape), settings.fourier, generator).to(device)
    jitter_rng = torch.Generator(device=device).manual_seed(settings.seed)
    optimizer = torch.optim.Adam([image.param], lr=settings.lr)
    rows = torch.arange(len(units), device=device)
    columns = torch.tensor(units, device=device)
    history = [_clean_scores(score_fn, image(), rows, columns)]
    for step in range(1, settings.steps + 1):
        pixels = image()
        moved = augment_batch(pixels, settings.jitter, jitter_rng)
        activation = score_fn(moved)[rows, columns]
        loss = -activation.sum() + settings.tv_weight * len(units) * total_variation(pixels)
        (grad,) = torch.autograd.grad(loss, [image.param])  # model weights stay untouched
        image.param.grad = grad
        optimizer.step()
        if _blur_now(settings, step):
            _blur_param(image.param)
        history.append(_clean_scores(score_fn, image(), rows, columns))
        if progress is not None:
            progress(step, settings.steps)
    with torch.no_grad():
        final = image().detach()
    return Synthesis(
        images=final.cpu().numpy(),
        history=np.stack(history),
        final_scores=history[-1],
    )


@torch.no_grad()
def _clean_scores(
    score_fn: ScoreFn, pixels: torch.Tensor, rows: torch.Tensor, columns: torch.Tensor
) -> np.ndarray:
    return score_fn(pixels.detach())[rows, columns].float().cpu().numpy()


@dataclass
class UnitReport:
    """Everything the maximization page shows for a set of units of one model."""

    units: list[int]
    extremes: Extremes  # rows follow `units`
    synthesis: Synthesis

    @property
    def best_dataset_scores(self) -> np.ndarray:
        return self.extremes.top_scores[:, 0]

    @property
    def units_beaten(self) -> int:
        """Units whose synthesized image excites them more than every dataset image."""
        return int((self.synthesis.final_scores > self.best_dataset_scores).sum())


def maximize_units(
    model: nn.Module,
    x: torch.Tensor,
    units: list[int] | None = None,
    k: int = 10,
    settings: SynthesisSettings = SynthesisSettings(),
    progress: Progress | None = None,
    score_fn: ScoreFn | None = None,
) -> UnitReport:
    """Rank `x` (on the model's device) by each unit of `score_fn` (default: the model's gate
    units) and synthesize an input for each, with the model in eval mode throughout."""
    with eval_mode(model):
        score_fn = score_fn or gate_scores(model)
        scores = dataset_scores(score_fn, x)
        units = list(range(scores.shape[1])) if units is None else list(units)
        extremes = rank_dataset(scores[:, units], k)
        shape = tuple(int(d) for d in x.shape[1:])
        synthesis = synthesize(score_fn, units, shape, settings, x.device, progress)
    return UnitReport(units, extremes, synthesis)
