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

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from moa_core.analysis.eval_mode import eval_mode
from moa_core.blocks.augment import AugmentSettings, augment_batch
from moa_core.train.control import TrainingControl

ScoreFn = Callable[[torch.Tensor], torch.Tensor]


def gate_scores(model: nn.Module) -> ScoreFn:
    """The pre-activation scores behind a model's gate probabilities (its `gate_logits`).

    Where the model offers `gate_scores(x)` (its gate network alone), only that runs: a whole
    MoA or MoE-VAE forward also decodes every image with every expert and computes its
    losses, work the scores never read (about four fifths of a synthesis step).
    """
    if hasattr(model, "gate_scores"):  # a model whose gate is a network of its own
        return model.gate_scores

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

    def blur_steps(self) -> list[int]:
        """The steps after which the image is blurred: each one drops the activation a
        little (the chart's sawtooth) before the ascent sharpens the image again."""
        every = self.blur_every
        if not every or self.fourier:
            return []
        # Not in the last stretch: the final image is sharpened by the ascent again.
        return list(range(every, self.steps - every + 1, every))


@dataclass
class Synthesis:
    """Synthesized images [U, C, H, W] in [0, 1], and each unit's activation at every step."""

    images: np.ndarray
    history: np.ndarray  # [steps done + 1, U]: activation of the clean image, 0 = the noise
    final_scores: np.ndarray  # [U]

    @property
    def steps_done(self) -> int:
        return len(self.history) - 1


# Called every `publish_every` steps with the step and the images so far; False stops early.
Publish = Callable[[int, Synthesis], bool]


# The Fourier parameters are scaled by 1/frequency² (frequency in cycles per image): broad
# strokes move freely, pixel noise hardly. With 1/frequency and a gain of 4 before the
# sigmoid, a quarter of the pixels ended pure black or white, in blotches.
FOURIER_DECAY = 2.0


class _ImageParam(nn.Module):
    """An image batch as free parameters; pixels = sigmoid(param), so they stay in (0, 1).

    With `fourier`, the parameters are the image's spectrum scaled by 1/frequency², so the
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
            self.register_buffer("scale", (freq * max(height, width)) ** -FOURIER_DECAY)
            spectrum = torch.randn(*shape[:-2], height, width // 2 + 1, 2, generator=generator)
            self.param = nn.Parameter(spectrum * 0.01)
        else:
            self.param = nn.Parameter(torch.randn(*shape, generator=generator) * 0.1)

    def forward(self) -> torch.Tensor:
        if not self.fourier:
            return torch.sigmoid(self.param)
        spectrum = torch.view_as_complex(self.param) * self.scale
        return torch.sigmoid(torch.fft.irfft2(spectrum, s=self.shape[-2:], norm="ortho"))


def total_variation(images: torch.Tensor) -> torch.Tensor:
    dx = (images[..., :, 1:] - images[..., :, :-1]).abs().mean()
    dy = (images[..., 1:, :] - images[..., :-1, :]).abs().mean()
    return dx + dy


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
    publish: Publish | None = None,
    publish_every: int = 8,
) -> Synthesis:
    """One input per unit, all optimized together: image u ascends the score of `units[u]`.

    The model behind `score_fn` must be in eval mode (the caller's job) so batch statistics
    do not mix the images. Deterministic for `settings.seed`. Each step runs the model once,
    on the jittered images (for the gradient) and the clean ones (for the history) together.
    """
    generator = torch.Generator().manual_seed(settings.seed)
    image = _ImageParam((len(units), *image_shape), settings.fourier, generator).to(device)
    jitter_rng = torch.Generator(device=device).manual_seed(settings.seed)
    optimizer = torch.optim.Adam([image.param], lr=settings.lr)
    n = len(units)
    rows = torch.arange(2 * n, device=device)
    columns = torch.tensor(units, device=device).repeat(2)
    blurs = set(settings.blur_steps())
    history: list[np.ndarray] = []
    for step in range(1, settings.steps + 1):
        pixels = image()
        moved = augment_batch(pixels, settings.jitter, jitter_rng)
        scores = score_fn(torch.cat([moved, pixels.detach()]))[rows, columns]
        history.append(scores[n:].detach().float().cpu().numpy())  # before this step's update
        loss = -scores[:n].sum() + settings.tv_weight * n * total_variation(pixels)
        (grad,) = torch.autograd.grad(loss, [image.param])  # model weights stay untouched
        image.param.grad = grad
        optimizer.step()
        if step in blurs:
            _blur_param(image.param)
        if publish is not None and step % publish_every == 0 and step < settings.steps:
            if not publish(step, _result(score_fn, image, history, rows[:n], columns[:n])):
                break
    result = _result(score_fn, image, history, rows[:n], columns[:n])
    if publish is not None:
        publish(result.steps_done, result)
    return result


@torch.no_grad()
def _result(
    score_fn: ScoreFn,
    image: _ImageParam,
    history: list[np.ndarray],
    rows: torch.Tensor,
    columns: torch.Tensor,
) -> Synthesis:
    """The images now and their history, completed by the clean scores of the images now."""
    pixels = image().detach()
    now = score_fn(pixels)[rows, columns].float().cpu().numpy()
    return Synthesis(
        images=pixels.cpu().numpy(), history=np.stack([*history, now]), final_scores=now
    )


@dataclass
class Ranking:
    """The dataset's extremes for a set of units: the page shows them before any synthesis."""

    units: list[int]
    extremes: Extremes  # rows follow `units`

    @property
    def best_dataset_scores(self) -> np.ndarray:
        return self.extremes.top_scores[:, 0]


@dataclass
class UnitReport:
    """Everything the maximization page shows for a set of units of one model."""

    ranking: Ranking
    synthesis: Synthesis

    @property
    def units(self) -> list[int]:
        return self.ranking.units

    @property
    def extremes(self) -> Extremes:
        return self.ranking.extremes

    @property
    def best_dataset_scores(self) -> np.ndarray:
        return self.ranking.best_dataset_scores

    @property
    def units_beaten(self) -> int:
        """Units whose synthesized image excites them more than every dataset image."""
        return int((self.synthesis.final_scores > self.best_dataset_scores).sum())


def rank_units(
    model: nn.Module,
    x: torch.Tensor,
    units: list[int] | None = None,
    k: int = 10,
    score_fn: ScoreFn | None = None,
) -> Ranking:
    """Rank `x` (on the model's device) by each unit of `score_fn` (default: the model's gate
    units), in eval mode: one pass over the data, no synthesis."""
    with eval_mode(model):
        scores = dataset_scores(score_fn or gate_scores(model), x)
    units = list(range(scores.shape[1])) if units is None else list(units)
    return Ranking(units, rank_dataset(scores[:, units], k))


def maximize_units(
    model: nn.Module,
    x: torch.Tensor,
    units: list[int] | None = None,
    k: int = 10,
    settings: SynthesisSettings = SynthesisSettings(),
    score_fn: ScoreFn | None = None,
) -> UnitReport:
    """`rank_units`, then synthesize an input for each unit, with the model in eval mode."""
    ranking = rank_units(model, x, units, k, score_fn)
    with eval_mode(model):
        shape = tuple(int(d) for d in x.shape[1:])
        synthesis = synthesize(
            score_fn or gate_scores(model), ranking.units, shape, settings, x.device
        )
    return UnitReport(ranking, synthesis)


def synthesis_work(
    model: nn.Module,
    ranking: Ranking,
    image_shape: tuple[int, int, int],
    settings: SynthesisSettings,
    device: str | torch.device,
    score_fn_for: Callable[[nn.Module], ScoreFn] = gate_scores,
) -> Callable[[Callable[[Any], None], TrainingControl], UnitReport]:
    """The synthesis as a job's work (`JobSpec.work`), so a page need not wait for it.

    It runs on a private eval-mode copy of the model (a page may switch the shared one's mode
    meanwhile) and publishes the images so far as an "epoch" event whose snapshot is
    `{"synthesis": Synthesis}`, every few steps; Stop ends it early with the images so far,
    Pause holds it between steps.
    """

    def work(on_event: Callable[[Any], None], control: TrainingControl) -> UnitReport:
        from moa_core.train.trainer import TrainEvent  # the trainer imports this module

        private = copy.deepcopy(model).eval()

        def publish(step: int, partial: Synthesis) -> bool:
            message = f"step {step} of {settings.steps}"
            on_event(TrainEvent("epoch", step, step, None, {}, {"synthesis": partial}, message))
            return control.wait_for_turn()

        synthesis = synthesize(
            score_fn_for(private), ranking.units, image_shape, settings, device, publish
        )
        return UnitReport(ranking, synthesis)

    return work
