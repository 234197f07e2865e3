"""The numbers of one pretraining run (paper 001, Tables II–III), as a checkpoint keeps them.

A saved MoE-VAE carries its record in the checkpoint metadata, so the pipeline page can draw a
registry run's decisions without re-running them. Records from uploaded files are untrusted
JSON: `from_dict` checks every field before a page touches it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.mixture import GaussianMixture

from moa_core.analysis.cluster_finder import ClusterFinding
from moa_core.analysis.latent_size import LatentSize
from moa_core.data import Dataset
from moa_core.metrics import clustering_accuracy

MAX_POINTS = 2000  # UMAP points kept for the scatter; enough to see the clusters
MAX_COUNT = 2**31  # any count or size in an untrusted record stays below this
MAX_MAGNITUDE = 1e9  # and any number within ± this, so formatting and plotting cannot overflow


class RecordError(ValueError):
    """A pretraining record that does not have the expected fields."""


@dataclass
class PipelineRecord:
    """Every decision of the pretraining and how good it was against the true labels."""

    dataset: str
    samples: int
    threshold: float
    explained: list[float]  # cumulative explained-variance ratio of the wide VAE's codes
    latent_size: int
    k_found: int
    labeled_fraction: float
    acc_labeled: float  # HDBSCAN's labels vs the truth, on the labelled samples (Table II)
    gmm_acc: float  # a K-component GMM on the same UMAP (Table II's baseline row)
    latent_sizes: list[int]
    manager_acc: float  # the pretrained manager on every sample (Table III)
    manager_nmi: float
    manager_ari: float
    manager_agreement: float  # share of labelled samples whose manager argmax is their label
    confusion_clusters: list[list[int]]  # rows: HDBSCAN label, columns: manager's cluster
    confusion_classes: list[list[int]]  # rows: true class, columns: manager's cluster
    class_names: list[str]
    points: list[list[float]]  # [x, y, HDBSCAN label, true-class index], a seeded subsample
    seconds: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> dict[str, Any]:
        """The fields `moa train moe_vae` adds to its JSON line."""
        keys = ("k_found", "labeled_fraction", "acc_labeled", "manager_acc", "manager_nmi")
        return {**{k: getattr(self, k) for k in keys}, "latent_sizes": self.latent_sizes}

    @classmethod
    def from_dict(cls, data: Any) -> PipelineRecord:
        if not isinstance(data, dict):
            raise RecordError("pretraining record must be an object")
        values = {}
        for field in dataclasses.fields(cls):
            if field.name not in data:
                raise RecordError(f"pretraining record lacks '{field.name}'")
            values[field.name] = _checked(field.name, field.type, data[field.name])
        record = cls(**values)
        record._check_shapes()
        return record

    def _check_shapes(self) -> None:
        k, classes = self.k_found, len(self.class_names)
        if not 1 <= k <= MAX_COUNT or not 0 < self.threshold <= 1:
            raise RecordError("pretraining record: K or the threshold is out of range")
        if len(self.latent_sizes) != k or len(self.confusion_clusters) != k:
            raise RecordError("pretraining record: latent_sizes and clusters disagree with K")
        if not all(1 <= size <= MAX_COUNT for size in [self.latent_size, *self.latent_sizes]):
            raise RecordError("pretraining record: latent sizes must be between 1 and 2^31")
        rows = self.confusion_clusters + self.confusion_classes
        if any(len(row) != k or min(row, default=0) < 0 for row in rows):
            raise RecordError("pretraining record: confusion rows are K counts ≥ 0")
        if len(self.confusion_classes) != classes:
            raise RecordError("pretraining record: one confusion row per class name")
        if len(self.points) > MAX_POINTS or any(
            len(p) != 4 or not (-1 <= p[2] < k and 0 <= p[3] < classes) for p in self.points
        ):
            raise RecordError("pretraining record: points are [x, y, label < K, class]")
        if len(self.explained) > MAX_COUNT:
            raise RecordError("pretraining record: too many explained-variance values")


_KINDS = {"str": str, "int": int, "float": (int, float)}


def _checked(name: str, annotation: str, value: Any) -> Any:
    """Check `value` against the field's annotation, written as a string under `from
    __future__ import annotations`: str, int, float, list[...] or dict[str, float]."""
    bad = RecordError(f"pretraining record: '{name}' must be {annotation}")
    if annotation == "str":
        if not isinstance(value, str):
            raise bad
        return value
    if annotation in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, _KINDS[annotation]):
            raise bad
        if abs(value) > MAX_MAGNITUDE or not math.isfinite(value):  # big ints compare exactly
            raise RecordError(f"pretraining record: '{name}' is out of range")
        return float(value) if annotation == "float" else value
    if annotation == "dict[str, float]":
        if not isinstance(value, dict):
            raise bad
        return {str(k): _checked(name, "float", v) for k, v in value.items()}
    inner = annotation.removeprefix("list[").removesuffix("]")
    if not isinstance(value, list):
        raise bad
    return [_checked(name, inner, item) for item in value]


def _subsample(n: int, limit: int, seed: int = 0) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def _confusion(rows: np.ndarray, columns: np.ndarray, shape: tuple[int, int]) -> list[list[int]]:
    table = np.zeros(shape, dtype=np.int64)
    np.add.at(table, (rows, columns), 1)
    return table.tolist()


def true_classes(dataset: Dataset) -> np.ndarray:
    """Each sample's class as an index into `dataset.class_names`."""
    return np.unique(dataset.y.cpu().numpy(), return_inverse=True)[1]


def scatter_points(clusters: ClusterFinding, truth: np.ndarray) -> list[list[float]]:
    """[x, y, HDBSCAN label, true class] for a seeded subsample of at most MAX_POINTS."""
    keep = _subsample(len(truth), MAX_POINTS)
    points = np.column_stack(
        [np.round(clusters.embedding[keep], 3), clusters.labels[keep], truth[keep]]
    )
    return points.tolist()


@dataclass
class ClusterSummary:
    """What is drawn and tabled of HDBSCAN's verdict: Table II's scores, scatter points."""

    scores: dict[str, Any]
    points: list[list[float]]


def summarize_clusters(clusters: ClusterFinding, dataset: Dataset) -> ClusterSummary:
    truth = true_classes(dataset)
    return ClusterSummary(cluster_scores(clusters, truth), scatter_points(clusters, truth))


def cluster_scores(clusters: ClusterFinding, truth: np.ndarray) -> dict[str, Any]:
    """Table II for this run: K, the labelled share, HDBSCAN's accuracy on it, and a
    K-component GMM's accuracy on the same UMAP."""
    labelled = clusters.labels >= 0
    k = clusters.k
    scores = {"k_found": k, "labeled_fraction": round(clusters.labeled_fraction, 4)}
    if k == 0:
        return {**scores, "acc_labeled": 0.0, "gmm_acc": 0.0}
    gmm = GaussianMixture(k, random_state=0).fit_predict(clusters.embedding)
    return {
        **scores,
        "acc_labeled": round(clustering_accuracy(truth[labelled], clusters.labels[labelled]), 4),
        "gmm_acc": round(clustering_accuracy(truth, gmm), 4),
    }


def manager_scores(
    clusters: ClusterFinding, probs: np.ndarray, truth: np.ndarray, classes: int
) -> dict[str, Any]:
    """Table III for this run, and the manager's agreement with HDBSCAN's labels."""
    labelled = clusters.labels >= 0
    k, chosen = clusters.k, probs.argmax(1)
    return {
        "manager_acc": round(clustering_accuracy(truth, chosen), 4),
        "manager_nmi": round(float(normalized_mutual_info_score(truth, chosen)), 4),
        "manager_ari": round(float(adjusted_rand_score(truth, chosen)), 4),
        # The manager learned HDBSCAN's label c as its output c: plain agreement, no matching.
        "manager_agreement": round(
            float((chosen[labelled] == clusters.labels[labelled]).mean()), 4
        ),
        "confusion_clusters": _confusion(clusters.labels[labelled], chosen[labelled], (k, k)),
        "confusion_classes": _confusion(truth, chosen, (classes, k)),
    }


def build_record(
    dataset: Dataset,
    latent: LatentSize,
    clusters: ClusterFinding,
    summary: ClusterSummary,
    expert_sizes: tuple[int, ...],
    manager_probs: np.ndarray,
    seconds: dict[str, float],
) -> PipelineRecord:
    """Every decision of the pretraining, scored against the dataset's true labels."""
    truth = true_classes(dataset)
    return PipelineRecord(
        dataset=dataset.name,
        samples=len(truth),
        threshold=latent.threshold,
        explained=[round(float(v), 5) for v in latent.cumulative],
        latent_size=latent.size,
        latent_sizes=list(expert_sizes),
        class_names=list(dataset.class_names),
        points=summary.points,
        seconds=dict(seconds),
        **summary.scores,
        **manager_scores(clusters, manager_probs, truth, len(dataset.class_names)),
    )
