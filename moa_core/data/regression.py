"""Regression targets for paper 002's gated experts, and the two baselines they are judged by.

Paper 002, §8.2 annotates every sample with an affine image of its input. [REPO]
`generate_regression_variable` (spec §2.1) draws one map per true class, W ~ N(0, 1) of shape
(out, in, K) and b ~ N(0, 1) of shape (out, K), and sets y_i = W[:, :, c_i] x_i + b[:, c_i]
with no noise, so a mixture whose gate finds the classes can fit the targets exactly. The
input is the flattened x the model sees (standardized points, images in [0, 1]).

Table 1's numbers swing with the random maps (a constant predictor scores 4.9–156 at out = 1
across seeds, spec §2.3b), so a model's error is read against a constant predictor and one
affine map on the same targets (spec §5.2).

The affine baseline is a small ridge fit, not plain least squares. On a 10,000-image MNIST
subset (784 inputs, many pixels lit in only a handful of images) the minimum-norm least-squares
map fits the train side (error 62.9 at out = 1) and blows up on the test side: 5,346 (16,030
in an earlier run), far worse than the constant predictor's 122.7, so it was no baseline at all.
A penalty of `RIDGE` per training sample on the weights (not the bias) brings the test error to
73.5; any penalty from 1e-7 to 1e-2 per sample gives 72.6–78.0 (out = 2: 131–141, out = 5:
270–294, target_seed 0), so the choice does not drive the comparison. On the 2-D spiral the
penalty changes nothing visible (25,000 samples, two well-conditioned inputs).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from moa_core.data.dataset import Dataset
from moa_core.metrics import regression_mse

GRAM_CHUNK = 4096  # rows per step of the least-squares fit: MNIST's 60,000 × 785 stays small
RIDGE = 1e-3  # the affine baseline's weight penalty per training sample (see above)


def flat_inputs(x: torch.Tensor) -> torch.Tensor:
    """Samples as rows [N, D]: points as they are, images flattened C·H·W."""
    return x.reshape(len(x), -1)


def class_affine_maps(
    in_features: int, output_dim: int, num_classes: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The seeded maps W [out, in, K] and b [out, K], both N(0, 1) ([REPO], spec §2.1)."""
    generator = torch.Generator().manual_seed(seed)
    weights = torch.randn(output_dim, in_features, num_classes, generator=generator)
    bias = torch.randn(output_dim, num_classes, generator=generator)
    return weights, bias


def class_map_outputs(x: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Every class map applied to every sample, W_k x + b_k: [N, out, K]."""
    weights, bias = weights.to(x.device), bias.to(x.device)
    return torch.einsum("ni,oik->nok", flat_inputs(x), weights) + bias


def attach_targets(dataset: Dataset, output_dim: int, seed: int) -> Dataset:
    """`dataset` with targets y_i = W_{c_i} x_i + b_{c_i} [N, out] (paper 002, §8.2; spec §2.1).

    The maps depend only on (input size, output_dim, number of classes, seed), so a spec's
    train and test sides get the same ones; c_i is the sample's class index.
    """
    if output_dim < 1:
        raise ValueError(f"output_dim must be ≥ 1, got {output_dim}")
    num_classes = len(dataset.label_values) or dataset.num_classes
    x = flat_inputs(dataset.x)
    weights, bias = class_affine_maps(x.shape[1], output_dim, num_classes, seed)
    outputs = class_map_outputs(x, weights, bias)
    classes = dataset.class_indices().to(x.device)
    targets = outputs[torch.arange(len(x), device=x.device), :, classes]
    return replace(dataset, targets=targets.float())


def _targets_of(dataset: Dataset) -> torch.Tensor:
    if dataset.targets is None:
        raise ValueError(f"'{dataset.name}' has no regression targets (see attach_targets)")
    return dataset.targets


def constant_baseline_mse(train: Dataset, test: Dataset) -> float:
    """Test error of predicting the train targets' mean for every sample (spec §5.2)."""
    mean = _targets_of(train).double().mean(0, keepdim=True).cpu()
    test_targets = _targets_of(test).cpu()
    return regression_mse(mean.expand_as(test_targets).numpy(), test_targets.numpy())


def fit_affine(x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Ridge A [D + 1, out] with [x, 1] A ≈ targets, on the CPU in float64.

    Solved through the normal equations, accumulated chunk by chunk, with λ = RIDGE·N added to
    the weights' diagonal (the bias is not penalized): images have pixels that are 0 in every
    sample or nearly so, and the penalty keeps their weights at or near 0 instead of fitting
    noise (module docstring).
    """
    x, targets = flat_inputs(x), targets.reshape(len(targets), -1)
    gram = torch.zeros(x.shape[1] + 1, x.shape[1] + 1, dtype=torch.float64)
    rhs = torch.zeros(x.shape[1] + 1, targets.shape[1], dtype=torch.float64)
    for start in range(0, len(x), GRAM_CHUNK):
        rows = _with_ones(x[start : start + GRAM_CHUNK])
        gram += rows.T @ rows
        rhs += rows.T @ targets[start : start + GRAM_CHUNK].cpu().double()
    penalty = torch.full((x.shape[1] + 1,), RIDGE * len(x), dtype=torch.float64)
    penalty[-1] = 0.0
    return torch.linalg.solve(gram + torch.diag(penalty), rhs)


def affine_baseline_mse(train: Dataset, test: Dataset) -> float:
    """Test error of one affine map for all samples, fitted on the train side (spec §5.2)."""
    solution = fit_affine(train.x, _targets_of(train))
    predictions = torch.cat(
        [
            _with_ones(rows) @ solution
            for rows in flat_inputs(test.x).split(GRAM_CHUNK)  # no float64 copy of all of x
        ]
    )
    return regression_mse(predictions.numpy(), _targets_of(test).cpu().numpy())


def baseline_scores(train: Dataset, test: Dataset) -> dict[str, float]:
    """Both baselines' test errors, under the names the CLI and checkpoints use."""
    return {
        "baseline_constant_mse": constant_baseline_mse(train, test),
        "baseline_affine_mse": affine_baseline_mse(train, test),
    }


def _with_ones(x: torch.Tensor) -> torch.Tensor:
    rows = x.cpu().double()
    return torch.cat([rows, torch.ones(len(rows), 1, dtype=torch.float64)], dim=1)
