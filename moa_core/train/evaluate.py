"""Score a model's clustering of a dataset: the numbers the CLI prints and the app plots."""

from __future__ import annotations

from torch import nn

from moa_core.analysis.outputs import ModelOutputs, collect_outputs
from moa_core.data import Dataset
from moa_core.metrics import classification_scores, clustering_scores, regression_mse


def evaluate(model: nn.Module, dataset: Dataset, batch_size: int = 512) -> dict:
    """ACC, NMI, ARI, clusters used and expert usage of the gate's argmax against the labels;
    for a classifier, its accuracy and the share of dead routing gates; for a regressor on a
    dataset with targets, also its `regression_mse`."""
    return score_outputs(collect_outputs(model, dataset.x, batch_size), dataset)


def score_outputs(outputs: ModelOutputs, dataset: Dataset) -> dict:
    """The scores of `evaluate` from outputs already collected over `dataset`."""
    if outputs.class_logits is not None:
        targets = dataset.class_indices().cpu().numpy()
        return classification_scores(targets, outputs.class_logits, outputs.routing_gates)
    num_clusters = outputs.gate_probs.shape[1]
    scores = clustering_scores(dataset.y.cpu().numpy(), outputs.clusters, num_clusters)
    if outputs.predictions is not None and dataset.targets is not None:
        # The gate's clustering still means something: the targets were made per class.
        targets = dataset.targets.cpu().numpy()
        scores["regression_mse"] = regression_mse(outputs.predictions, targets)
    return scores
