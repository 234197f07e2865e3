"""What every estimator shares: scikit-learn's parameter protocol (`get_params`, `set_params`,
`clone`) over the lab's own training. `fit` calls `train_model`, the function the CLI and the
pages train through (the same Trainer, seeds and defaults), so an estimator's run is the
`moa train` run with the same settings; `save`/`load` write and check the lab's safetensors
checkpoints (never pickle)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted
from tqdm import tqdm

from moa_core.analysis.outputs import ModelOutputs, collect_outputs
from moa_core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from moa_core.data import Dataset
from moa_core.estimators.data import IN_MEMORY, as_dataset
from moa_core.train.pretraining import train_family
from moa_core.train.run import TrainedRun
from moa_core.train.setup import check_dataset_fits
from moa_core.train.trainer import Callback, TrainEvent

ESTIMATOR_KEY = "estimator"  # the checkpoint meta entry naming the class and its parameters


class LabEstimator(BaseEstimator):
    """A family of the lab behind scikit-learn's habits. Subclasses name `model_type` (or
    take it as a parameter) and define `__init__` with their parameters; every training
    setting left None is the family's default, as in `moa train`."""

    model_type: ClassVar[str] = ""

    # --- training -------------------------------------------------------------------------

    def _family(self) -> str:
        return self.model_type

    def _model_settings(self) -> dict[str, Any]:
        """The constructor's model parameters as config keys (e.g. n_clusters → num_clusters)."""
        return {}

    def _overrides(self) -> dict[str, Any]:
        """Everything `moa train --set` would get: training settings, the seed, the model's
        settings, then `options` (any further model or training key, as `--set` takes)."""
        training = {"epochs": self.epochs, "lr": self.lr, "batch_size": self.batch_size}
        overrides = {key: value for key, value in training.items() if value is not None}
        overrides.update(device=self.device, seed=_seed(self.random_state))
        return {**overrides, **self._model_settings(), **(self.options or {})}

    def _train(self, data: Dataset) -> TrainedRun:
        say = (lambda step: print(step, file=sys.stderr, flush=True)) if self.verbose else None
        return train_family(self._family(), data, self._overrides(), self._callbacks(), say)

    def _fit(self, data: Dataset) -> TrainedRun:
        run = self._train(data)
        if run.result.status != "finished":  # a NaN loss: the last good weights are kept
            warnings.warn(run.result.message, ConvergenceWarning, stacklevel=3)
        self.model_ = run.model
        self.config_ = run.config
        self.history_ = run.result.history
        self.n_iter_ = run.result.epochs_done
        self.n_features_in_ = int(data.x[0].numel())  # per sample: 2 for points, C·H·W images
        return run

    def _callbacks(self) -> list[Callback]:
        return [TrainingBar(self._family())] if self.verbose else []

    # --- inference ------------------------------------------------------------------------

    def _outputs(self, X: object) -> ModelOutputs:
        """The fitted model's outputs over X, checked against what the model was fitted on."""
        check_is_fitted(self, "model_")
        data = as_dataset(X)
        check_dataset_fits(self.config_, data)
        device = next(self.model_.parameters()).device
        return collect_outputs(self.model_, data.x.to(device))

    # --- files ----------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """The fitted model as a lab checkpoint (safetensors), with this estimator's class and
        parameters: `load` reads it back, `moa eval FILE --dataset NAME` scores it."""
        check_is_fitted(self, "model_")
        entry = {"class": type(self).__name__, "params": self.get_params(), **self._saved()}
        meta = {"dataset": IN_MEMORY, "epochs_done": self.n_iter_, ESTIMATOR_KEY: entry}
        return save_checkpoint(Path(path), self.model_, self.config_, meta)

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Self:
        """A fitted estimator from a checkpoint this class saved, or from `moa train` of the
        same family (then with the model's own settings, the rest default). One-line
        `CheckpointError` otherwise. `labels_` describe a fit's data: a loaded model has none."""
        loaded = load_checkpoint(Path(path), device)
        entry = loaded.meta.get(ESTIMATOR_KEY)
        if entry is not None and entry.get("class") != cls.__name__:
            raise CheckpointError(
                f"{Path(path).name} holds a {entry.get('class')}, not a {cls.__name__}"
            )
        try:
            estimator = cls(**(entry["params"] if entry else cls._params_of(loaded.config)))
        except TypeError as err:  # parameters this class does not take
            raise CheckpointError(f"{Path(path).name}: {err}") from None
        if entry is None and loaded.config.model_type != estimator._family():
            raise CheckpointError(
                f"{Path(path).name} holds a {loaded.config.model_type} model, "
                f"not a {estimator._family()}"
            )
        estimator.model_, estimator.config_ = loaded.model, loaded.config
        estimator.history_, estimator.n_iter_ = [], int(loaded.meta.get("epochs_done", 0))
        estimator._restore(entry or {})
        return estimator

    @classmethod
    def _params_of(cls, config: Any) -> dict[str, Any]:
        """Constructor parameters for a model `moa train` made (no estimator entry)."""
        return {}

    def _saved(self) -> dict[str, Any]:
        """Fitted state beyond the weights that `load` needs back (a classifier's classes)."""
        return {}

    def _restore(self, entry: dict[str, Any]) -> None:
        """Take back what `_saved` kept."""


class TrainingBar:
    """A tqdm bar over a training's batches, its loss and each epoch's scores (`verbose`)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.bar: tqdm | None = None

    def __call__(self, event: TrainEvent) -> None:
        if event.kind == "started":
            total = (event.metrics or {}).get("total_steps")
            self.bar = tqdm(
                total=total, desc=self.name, unit="batch", file=sys.stderr, mininterval=0.5
            )
        elif self.bar is None:
            return
        elif event.kind == "batch":
            self.bar.update(event.step - self.bar.n)
            self.bar.set_postfix(epoch=event.epoch, loss=f"{event.loss:.4g}")
        elif event.kind == "epoch":
            self.bar.set_postfix(epoch=event.epoch, loss=f"{event.loss:.4g}")
        else:  # finished, stopped or failed
            self.bar.close()


def _seed(random_state: object) -> int:
    """scikit-learn's `random_state` as the lab's seed: an int as is; None or a NumPy
    generator draws one (so the run does not repeat, as in scikit-learn)."""
    if isinstance(random_state, int | np.integer) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be ≥ 0, got {random_state}")
        return int(random_state)
    if random_state is None:
        return int(np.random.default_rng().integers(2**31 - 1))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31 - 1))
    raise ValueError(f"random_state must be None, an int or a RandomState, not {random_state!r}")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise class probabilities from a classifier's scores."""
    return torch.from_numpy(logits).float().softmax(1).numpy()
