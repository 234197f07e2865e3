"""One call from (model type, dataset, settings) to a trained model: the CLI, the job
manager and the benchmarks all train through here, so they train the same way."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from moa_core.data import Dataset, labelled_splits, load_dataset
from moa_core.data.registry import seeded_subset
from moa_core.data.regression import baseline_scores
from moa_core.device import resolve_device
from moa_core.models import ConfigError, ModelConfig, build_model, config_class
from moa_core.train.control import TrainingControl
from moa_core.train.evaluate import evaluate
from moa_core.train.setup import (
    TrainConfig,
    model_config_for,
    split_overrides,
    train_config_from,
)
from moa_core.train.trainer import Callback, SnapshotHook, Trainer, TrainResult

_BUILD_LOCK = threading.Lock()


@dataclass
class TrainedRun:
    model: nn.Module
    config: ModelConfig
    train_config: TrainConfig
    dataset: Dataset
    result: TrainResult

    def checkpoint_meta(self) -> dict[str, Any]:
        """What a saved run remembers besides its weights."""
        return {
            "dataset": self.dataset.name,
            "train": self.train_config.to_dict(),
            "metrics": {k: v for k, v in self.result.metrics.items() if k != "usage"},
            "usage": self.result.metrics.get("usage", []),
            "epochs_done": self.result.epochs_done,
            "status": self.result.status,
            "seconds": round(self.result.seconds, 3),
        }


# What a run trains on: a dataset spec ("digits", "mnist:3,5") or samples already in memory
# (an estimator's X), which are trained on whole, with no held-out side.
DataSource = str | Dataset


def training_samples(
    spec: DataSource, max_samples: int, seed: int, held_out: bool = False
) -> Dataset:
    """The exact samples a run trains on (a seeded subset when `max_samples` > 0), so a saved
    run is re-scored by `moa eval` and the Latent page on what it saw. Families scored on a
    `held_out` side (`ModelConfig.needs_held_out`) never train on it (see `labelled_splits`).
    Regression targets are not attached here: see `ModelConfig.prepare_dataset`."""
    if isinstance(spec, Dataset):
        if not 0 < max_samples < len(spec):
            return spec
        keep = seeded_subset(np.arange(len(spec)), max_samples, seed)
        return spec.take(torch.from_numpy(keep).to(spec.x.device))
    if held_out:
        return labelled_splits(spec, max_samples or None, seed)[0]
    return load_dataset(spec, "train", limit=max_samples or None, seed=seed)


def test_samples(config: ModelConfig, spec: DataSource) -> Dataset | None:
    """The held-out samples a classifier or regressor is scored on (a regressor's with its
    targets); None for clustering models and for samples in memory."""
    if not config.needs_held_out() or isinstance(spec, Dataset):
        return None
    return config.prepare_dataset(labelled_splits(spec)[1])


def prepare(
    model_type: str,
    dataset_spec: DataSource,
    overrides: dict[str, Any] | None = None,
    initial_state: dict[str, torch.Tensor] | None = None,
) -> tuple[nn.Module, ModelConfig, TrainConfig, Dataset]:
    """Validate everything and build the seeded model, before any training starts."""
    train_over, model_over = split_overrides(overrides or {})
    train_config = train_config_from(train_over, config_class(model_type).train_defaults)
    held_out = config_class(model_type).needs_held_out()
    dataset = training_samples(dataset_spec, train_config.max_samples, train_config.seed, held_out)
    config = model_config_for(model_type, dataset, model_over)
    dataset = config.prepare_dataset(dataset)
    # Jobs build models in parallel threads: seed and build under one lock, on a forked RNG,
    # so compare mode's two models get exactly the weights their seed promises.
    with _BUILD_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(train_config.seed)
        model = build_model(config)
    if initial_state:  # pretrained parts (e.g. a manager); the rest keeps its seeded weights
        unexpected = model.load_state_dict(initial_state, strict=False).unexpected_keys
        if unexpected:
            raise ConfigError(
                f"{model_type}: pretrained weights it does not have: {unexpected[:3]}"
            )
    return model, config, train_config, dataset


def train_model(
    model_type: str,
    dataset_spec: DataSource,
    overrides: dict[str, Any] | None = None,
    callbacks: list[Callback] | None = None,
    control: TrainingControl | None = None,
    initial_state: dict[str, torch.Tensor] | None = None,
    snapshot_hooks: Sequence[SnapshotHook] = (),
) -> TrainedRun:
    model, config, train_config, dataset = prepare(
        model_type, dataset_spec, overrides, initial_state
    )
    device = resolve_device(train_config.device)
    test = test_samples(config, dataset_spec)
    trainer = Trainer(
        model, dataset, train_config, device, callbacks, control, test, snapshot_hooks
    )
    result = trainer.fit()
    if result.epochs_done:
        # Per-epoch metrics may use a subsample; the final figures cover every sample.
        result.metrics = evaluate(trainer.model, trainer.eval_source)
        if test is not None and test.targets is not None:  # what the regressor must beat
            result.metrics.update(baseline_scores(dataset, test))
    return TrainedRun(trainer.model, config, train_config, dataset, result)
