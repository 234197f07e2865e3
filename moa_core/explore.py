"""What the Latent space page shows about a checkpoint: its outputs on the data it was
trained on, scores, a seeded subsample of points with a 2-D UMAP, colours and hover texts.

Heavy steps are separate (`analyse` runs the model once; `embed` runs UMAP, cached in
`analysis.embedding`), so the page can cache them and recolour without recomputing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
import torch

from moa_core.analysis.embedding import UmapParams, umap_embedding
from moa_core.analysis.outputs import ModelOutputs, collect_outputs
from moa_core.checkpoint import CheckpointError, LoadedCheckpoint
from moa_core.data import Dataset
from moa_core.models import ConfigError, ModelConfig
from moa_core.train.evaluate import score_outputs
from moa_core.train.run import training_samples
from moa_core.train.setup import check_dataset_fits
from moa_core.viz.latent import latent_scatter

COLOR_MODES = ("predicted cluster", "true label", "gate entropy")
DEFAULT_MAX_POINTS = 2000
POINTS_STEP, MOST_POINTS = 100, 3000  # the "Points shown" slider's step and top


def points_slider(total: int) -> tuple[int, int, int] | None:
    """(low, high, default) for a "Points shown" slider over a run of `total` samples: never
    past the run's size, all of a small run by default; None when a slider has no choice to
    offer (a run of at most one step's worth of samples is drawn whole)."""
    high = min(total, MOST_POINTS)
    if high <= POINTS_STEP:
        return None
    return POINTS_STEP, high, min(high, DEFAULT_MAX_POINTS)


@dataclass
class RunAnalysis:
    """A checkpoint's model outputs on every sample of its training set (all on the CPU)."""

    run_id: str
    config: ModelConfig
    meta: dict[str, Any]
    dataset: Dataset
    outputs: ModelOutputs
    scores: dict[str, Any]

    @property
    def num_samples(self) -> int:
        return len(self.dataset)


def run_dataset(meta: dict[str, Any], held_out: bool = False) -> Dataset:
    """The exact samples a run trained on: its dataset spec, `max_samples` and seed (and for a
    family scored on a `held_out` side, its train side)."""
    spec = meta.get("dataset")
    if not spec:
        raise CheckpointError("the checkpoint does not record which dataset it was trained on")
    train = meta.get("train") or {}
    return training_samples(str(spec), train.get("max_samples", 0), train.get("seed", 0), held_out)


def checked_run_dataset(loaded: LoadedCheckpoint, run_id: str) -> Dataset:
    """The run's training samples, after checking the model takes them (kind, channels,
    size): a mismatch is a one-line CheckpointError, not a shape error deep in a forward."""
    dataset = run_dataset(loaded.meta, loaded.config.needs_held_out())
    try:
        check_dataset_fits(loaded.config, dataset)
    except ConfigError as err:
        raise CheckpointError(f"{run_id}: {err}") from None
    return dataset


def analyse(
    loaded: LoadedCheckpoint, run_id: str, device: str | torch.device = "cpu"
) -> RunAnalysis:
    """Run the model over its training set once; raises DatasetError / CheckpointError."""
    dataset = checked_run_dataset(loaded, run_id)
    config = loaded.config
    model = loaded.model.to(device)
    outputs = collect_outputs(model, dataset.x.to(device))
    scores = score_outputs(outputs, dataset)
    return RunAnalysis(run_id, config, loaded.meta, dataset.to("cpu"), outputs, scores)


def sample_indices(total: int, max_points: int, seed: int = 0) -> np.ndarray:
    """At most `max_points` sorted indices out of `total`, the same for the same seed."""
    if total <= max_points:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, size=max_points, replace=False))


def embed(analysis: RunAnalysis, indices: np.ndarray, params: UmapParams) -> np.ndarray:
    """UMAP of the chosen points' latent codes, cached per (run, split, point count, params)."""
    latents = analysis.outputs.latents[indices]
    key = f"{analysis.run_id}/train/{len(indices)}"
    return umap_embedding(latents, params, key=key)


@dataclass
class PointColors:
    """Colour values per point; `categories` (all possible values, in order) when categorical."""

    values: np.ndarray
    categories: list | None


def point_colors(analysis: RunAnalysis, indices: np.ndarray, mode: str) -> PointColors:
    """The colouring for one of `COLOR_MODES`; experts are numbered from 1 as on the bars."""
    if mode == "predicted cluster":
        experts = analysis.outputs.gate_probs.shape[1]
        return PointColors(analysis.outputs.clusters[indices] + 1, list(range(1, experts + 1)))
    if mode == "true label":
        names = np.asarray(_label_names(analysis, indices), dtype=object)
        return PointColors(names, list(analysis.dataset.class_names))
    if mode == "gate entropy":
        return PointColors(analysis.outputs.gate_entropy[indices], None)
    raise ValueError(f"unknown colour mode {mode!r} (one of {', '.join(COLOR_MODES)})")


def hover_texts(analysis: RunAnalysis, indices: np.ndarray) -> list[str]:
    """'#12 · expert 3 (p 0.91) · label 7 · entropy 0.31' for each chosen point."""
    probs = analysis.outputs.gate_probs[indices]
    clusters = probs.argmax(1)
    entropy = analysis.outputs.gate_entropy[indices]
    names = _label_names(analysis, indices)
    return [
        f"#{i} · expert {c + 1} (p {p[c]:.2f}) · label {name} · entropy {h:.2f}"
        for i, c, p, name, h in zip(indices, clusters, probs, names, entropy, strict=True)
    ]


def latent_map(
    analysis: RunAnalysis,
    indices: np.ndarray,
    mode: str,
    params: UmapParams,
    point_thumbnails: list[str] | None,
) -> go.Figure:
    """The Latent page's map of the chosen points (UMAP of their codes, coloured by `mode`,
    hover texts and thumbnails): the page and the HTML export draw the same figure."""
    colors = point_colors(analysis, indices, mode)
    return latent_scatter(
        embed(analysis, indices, params),
        colors.values,
        categorical=colors.categories is not None,
        categories=colors.categories,
        color_title=mode,
        hover_text=hover_texts(analysis, indices),
        thumbnails=point_thumbnails,
    )


def images(analysis: RunAnalysis, indices: np.ndarray) -> np.ndarray:
    """The chosen samples as `[n, C, H, W]` float arrays in [0, 1]."""
    return analysis.dataset.x[torch.as_tensor(indices)].numpy()


def _label_names(analysis: RunAnalysis, indices: np.ndarray) -> list[str]:
    """Readable true labels: the dataset's class names, ordered by label value."""
    names = analysis.dataset.names_by_label
    return [names[int(v)] for v in analysis.dataset.y.numpy()[indices]]
