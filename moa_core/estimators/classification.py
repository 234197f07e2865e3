"""The routing networks (paper 003) as a scikit-learn classifier: `fit(X, y)`, `predict`,
`predict_proba`, `score` (accuracy)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin

from moa_core.checkpoint import CheckpointError
from moa_core.data.dataset import DatasetError
from moa_core.estimators.base import LabEstimator, softmax
from moa_core.estimators.data import as_dataset

ROUTING_FAMILIES = ("multipath_cc", "multipath_cp", "singlepath")


class MultiPathClassifier(ClassifierMixin, LabEstimator):
    """A multi-path routing network (`model`: multipath_cc, multipath_cp or the singlepath
    baseline) on images [N, H, W] / [N, C, H, W] with labels y of any integer or string values.

    Parameters left None take the family's defaults (those of `moa train`); `options` takes
    any further key `moa train --set` takes, e.g. {"paths": 3}.
    """

    def __init__(
        self,
        model: str = "multipath_cc",
        *,
        epochs: int | None = None,
        lr: float | None = None,
        batch_size: int | None = None,
        random_state: int | None = None,
        device: str = "auto",
        verbose: bool = False,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.options = options

    def _family(self) -> str:
        if self.model not in ROUTING_FAMILIES:
            raise ValueError(
                f"model must be one of {', '.join(ROUTING_FAMILIES)}, not {self.model!r}"
            )
        return self.model

    def fit(self, X: object, y: object) -> MultiPathClassifier:
        """Train on all of X with its labels y (no held-out side: score on data of your own)."""
        labels = np.asarray(y)
        if labels.ndim != 1 or len(labels) != len(np.asarray(X)):
            raise DatasetError(f"y has shape {labels.shape}; expected one label per sample of X")
        self.classes_, positions = np.unique(labels, return_inverse=True)
        if len(self.classes_) < 2:
            raise DatasetError("y holds one class; a classifier needs at least 2")
        self._fit(as_dataset(X, positions))
        return self

    def predict(self, X: object) -> np.ndarray:
        positions = self._logits(X).argmax(1)  # first: it says when the model is not fitted
        return self.classes_[positions]

    def predict_proba(self, X: object) -> np.ndarray:
        """Class probabilities [N, len(classes_)], columns in the order of `classes_`."""
        return softmax(self._logits(X))

    def _logits(self, X: object) -> np.ndarray:
        return self._outputs(X).class_logits

    @classmethod
    def _params_of(cls, config: Any) -> dict[str, Any]:
        return {"model": config.model_type}

    def _saved(self) -> dict[str, Any]:
        return {"classes": self.classes_.tolist()}

    def _restore(self, entry: dict[str, Any]) -> None:
        count = self.config_.num_classes
        classes = np.asarray(entry.get("classes", range(count)))
        if len(classes) != count:
            raise CheckpointError(f"the file names {len(classes)} classes for {count} outputs")
        self.classes_ = classes
