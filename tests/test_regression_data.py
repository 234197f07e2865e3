"""Paper 002's regression targets: seeded per-class affine maps (spec §2.1), the test error
and its two baselines (spec §2.2, §5.2), and vector targets through the Trainer."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import pytest
import torch
from torch import nn

from moa_core.analysis.outputs import collect_outputs
from moa_core.data import Dataset, load_dataset
from moa_core.data.regression import (
    affine_baseline_mse,
    attach_targets,
    class_affine_maps,
    class_map_outputs,
    constant_baseline_mse,
)
from moa_core.metrics import regression_mse
from moa_core.models.base import MixtureOutput, ModelConfig
from moa_core.train.evaluate import evaluate
from moa_core.train.setup import TrainConfig
from moa_core.train.trainer import Trainer


def _points(x: list[list[float]], y: list[int], targets: list[list[float]] | None = None):
    return Dataset(
        name="hand",
        x=torch.tensor(x),
        y=torch.tensor(y),
        kind="points",
        class_names=[str(c) for c in sorted(set(y))],
        label_values=tuple(sorted(set(y))),
        targets=None if targets is None else torch.tensor(targets),
    )


# --- targets ---------------------------------------------------------------------------


def test_targets_are_seeded_per_class_affine_maps_of_x() -> None:
    """y_i = W[:, :, c_i] x_i + b[:, c_i] with W, b ~ N(0, 1) drawn from the seed."""
    data = load_dataset("spiral", limit=200)
    made = attach_targets(data, output_dim=2, seed=7)
    assert made.targets.shape == (200, 2) and made.targets.dtype == torch.float32
    weights, bias = class_affine_maps(2, 2, 5, seed=7)
    assert weights.shape == (2, 2, 5) and bias.shape == (2, 5)
    for i in (0, 57, 199):
        k = int(data.y[i])
        assert torch.allclose(made.targets[i], weights[:, :, k] @ data.x[i] + bias[:, k])
    assert torch.equal(attach_targets(data, 2, seed=7).targets, made.targets)
    assert not torch.allclose(attach_targets(data, 2, seed=8).targets, made.targets)


def test_same_point_in_two_classes_gets_two_targets() -> None:
    data = _points([[0.5, -1.0], [0.5, -1.0]], [0, 1])
    targets = attach_targets(data, 1, seed=0).targets
    assert targets[0] != targets[1]


def test_train_and_test_sides_share_the_maps() -> None:
    """Each arm's map, recovered by least squares on the train side, predicts the test side's
    targets of that arm: one map per class for the whole spec."""
    train = attach_targets(load_dataset("spiral25k", limit=500), 1, seed=3)
    test = attach_targets(load_dataset("spiral25k", "test", limit=500), 1, seed=3)
    for arm in range(5):
        fit = torch.linalg.lstsq(_with_ones(train.x[train.y == arm]), train.targets[train.y == arm])
        predicted = _with_ones(test.x[test.y == arm]) @ fit.solution
        assert torch.allclose(predicted, test.targets[test.y == arm], atol=1e-3)


def test_image_targets_use_the_flattened_image() -> None:
    data = load_dataset("digits:0,1", limit=20)
    targets = attach_targets(data, 1, seed=0).targets
    weights, bias = class_affine_maps(256, 1, 2, seed=0)
    k = int(data.class_indices()[3])
    assert torch.allclose(targets[3], weights[:, :, k] @ data.x[3].reshape(-1) + bias[:, k])


def test_targets_follow_subsets_and_devices() -> None:
    data = attach_targets(load_dataset("spiral", limit=50), 2, seed=1)
    index = torch.tensor([4, 0, 9])
    assert torch.equal(data.take(index).targets, data.targets[index])
    assert data.to("meta").targets.device.type == "meta"


# --- the test error and the baselines ----------------------------------------------------


def test_regression_mse_sums_outputs_and_averages_samples() -> None:
    assert regression_mse(np.array([[0.0], [2.0]]), np.array([[1.0], [1.0]])) == 1.0
    assert regression_mse(np.array([[0.0, 0.0]]), np.array([[1.0, 2.0]])) == 5.0


def test_one_hot_gate_on_the_true_class_with_the_true_maps_scores_zero() -> None:
    """Spec §5.1.7, second half: ŷ = Σ_k g_k (W_k x + b_k) with g one-hot at c_i is y_i."""
    data = load_dataset("spiral25k", "test")
    made = attach_targets(data, 5, seed=0)
    weights, bias = class_affine_maps(2, 5, 5, seed=0)
    gate = nn.functional.one_hot(data.class_indices(), 5).float()  # [N, K]
    predictions = (class_map_outputs(data.x, weights, bias) * gate[:, None, :]).sum(-1)
    assert regression_mse(predictions.numpy(), made.targets.numpy()) == 0.0


def test_constant_baseline_predicts_the_train_mean() -> None:
    train = _points([[0.0, 0.0], [1.0, 0.0]], [0, 1], [[1.0], [3.0]])
    test = _points([[5.0, 5.0], [6.0, 6.0]], [0, 1], [[2.0], [4.0]])
    assert constant_baseline_mse(train, test) == pytest.approx((0.0 + 4.0) / 2)


def test_affine_baseline_is_exact_on_one_affine_map_and_beats_the_mean() -> None:
    """Exact up to the small ridge penalty (1e-3 per sample: error 1.9e-5 on four points)."""
    x = torch.tensor([[0.0, 1.0], [1.0, 0.0], [2.0, 3.0], [4.0, -1.0], [3.0, 3.0]])
    y = x @ torch.tensor([[2.0, -1.0], [0.5, 3.0]]) + torch.tensor([1.0, -2.0])
    train = _points(x[:4].tolist(), [0, 0, 1, 1], y[:4].tolist())
    test = _points(x[4:].tolist(), [1], y[4:].tolist())
    assert affine_baseline_mse(train, test) == pytest.approx(0.0, abs=1e-4)
    spiral_train = attach_targets(load_dataset("spiral25k", limit=2000), 1, seed=0)
    spiral_test = attach_targets(load_dataset("spiral25k", "test", limit=1000), 1, seed=0)
    affine = affine_baseline_mse(spiral_train, spiral_test)
    assert 0 < affine < constant_baseline_mse(spiral_train, spiral_test)


def test_affine_baseline_copes_with_pixels_that_never_light() -> None:
    """Digits' border pixels are 0 in every image: a singular Gram matrix, still one answer,
    near-exact on an exact affine target (the ridge costs 0.2 % of the mean's error)."""
    data = load_dataset("digits:0,1", limit=120)
    assert (data.x.reshape(len(data), -1) == 0).all(0).any()
    x = data.x.reshape(len(data), -1)
    w = torch.randn(x.shape[1], 1, generator=torch.Generator().manual_seed(0))
    affine = replace(data, targets=x @ w + 0.5)
    assert affine_baseline_mse(affine, affine) < 0.01 * constant_baseline_mse(affine, affine)


# --- vector targets through the Trainer ---------------------------------------------------


@dataclass
class TinyRegressorConfig(ModelConfig):
    """A softmax-gated mixture of affine experts on points, just enough to train."""

    model_type: ClassVar[str] = "tiny_regressor"
    uses_targets: ClassVar[bool] = True
    in_features: int = 2
    num_clusters: int = 5
    output_dim: int = 2
    target_seed: int = 0


class TinyRegressor(nn.Module):
    """Records what the Trainer hands it: each forward's targets, each `begin_epoch`."""

    def __init__(self, config: TinyRegressorConfig) -> None:
        super().__init__()
        self.config = config
        k, out = config.num_clusters, config.output_dim
        self.gate = nn.Sequential(nn.Linear(config.in_features, 32), nn.ReLU(), nn.Linear(32, k))
        self.experts = nn.Linear(config.in_features, out * k)
        self.calls: list[tuple] = []

    def begin_epoch(self, epoch: int, x: torch.Tensor) -> None:
        self.calls.append(("begin_epoch", epoch, tuple(x.shape)))

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None) -> MixtureOutput:
        logits = self.gate(x)
        gate = logits.softmax(1)
        experts = self.experts(x).reshape(len(x), self.config.output_dim, -1)
        predictions = (experts * gate[:, None, :]).sum(-1)
        if targets is None:
            loss = torch.zeros((), device=x.device)
        else:
            self.calls.append(("targets", targets.dtype, tuple(targets.shape)))
            loss = ((predictions - targets) ** 2).sum(1).mean()
        return MixtureOutput(loss, gate, logits, gate_logits=logits, predictions=predictions)


def _tiny_run(
    epochs: int, eval_limit: int = 5000, batch_size: int = 100, lr: float = 1e-2
) -> tuple[TinyRegressor, Trainer]:
    config = TinyRegressorConfig()
    data = config.prepare_dataset(load_dataset("spiral", limit=300))
    torch.manual_seed(0)
    model = TinyRegressor(config)
    settings = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, eval_limit=eval_limit)
    return model, Trainer(model, data, settings, torch.device("cpu"))


def test_trainer_passes_float_targets_and_begins_every_epoch() -> None:
    """Before each epoch's three batches: `begin_epoch(epoch, all x)`; then [B, out] floats."""
    model, trainer = _tiny_run(epochs=2)
    assert trainer.fit().status == "finished"
    batches = [("targets", torch.float32, (100, 2))] * 3
    begin = [("begin_epoch", epoch, (300, 2)) for epoch in (1, 2)]
    assert model.calls == [begin[0], *batches, begin[1], *batches]


def test_training_lowers_the_regression_error_scored_per_epoch() -> None:
    model, trainer = _tiny_run(epochs=30, batch_size=50, lr=3e-2)  # 5.8 → 1.0
    before = evaluate(model, trainer.data)["regression_mse"]
    result = trainer.fit()
    after = result.history[-1]["metrics"]["regression_mse"]
    assert after < 0.5 * before
    assert {"acc", "nmi", "ari"} <= set(result.metrics)  # the gate still scored as clustering


def test_eval_subsample_keeps_each_sample_with_its_target() -> None:
    _, trainer = _tiny_run(epochs=1, eval_limit=40)
    sample = trainer.eval_data
    assert len(sample) == 40
    remade = attach_targets(replace(sample, targets=None), 2, seed=0)
    assert torch.equal(sample.targets, remade.targets)


def test_outputs_without_targets_still_carry_predictions() -> None:
    model, trainer = _tiny_run(epochs=1)
    outputs = collect_outputs(model, trainer.data.x, batch_size=64)
    assert outputs.predictions.shape == (300, 2)


def test_trainer_refuses_a_regressor_without_targets() -> None:
    config = TinyRegressorConfig()
    with pytest.raises(ValueError, match="no regression targets"):
        cpu = torch.device("cpu")
        Trainer(TinyRegressor(config), load_dataset("spiral", limit=20), TrainConfig(), cpu)


def _with_ones(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, torch.ones(len(x), 1)], dim=1)
