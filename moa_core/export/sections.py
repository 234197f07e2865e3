"""What an exported page shows about a run, section by section.

Each figure section asks what the run can show, never which family it is: images give a
latent map, gates a routing diagram, decoding experts their samples, 2-D points the densities
over the plane. A section that does not apply returns None. The figures are the app's own
(`viz`), computed the way its pages compute them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from moa_core import explore
from moa_core.analysis import generation
from moa_core.analysis.density import plane_snapshot
from moa_core.analysis.embedding import UmapParams
from moa_core.analysis.health import collapse_message
from moa_core.analysis.routing import gate_vectors, predictions, routing_views
from moa_core.export.page import (
    Section,
    caption_html,
    facts_table,
    figure_html,
    numbers_table,
    picture_html,
    picture_uri,
    text,
)
from moa_core.ui_state import score_tiles
from moa_core.viz.density import density_contours, mean_density_table
from moa_core.viz.images import image_grid, png_data_uri, thumbnails
from moa_core.viz.latent import LATENT_CSS, latent_body
from moa_core.viz.routing import routing_diagram
from moa_core.viz.training import usage_figure

MAX_POINTS = 1000  # points on the latent map
THUMBNAIL_BYTES = 1_000_000  # their hover images together: the page stays under ~6 MB
PROBE_POINTS = 50  # images whose PNG size estimates a thumbnail's
ROUTING_INPUTS = 2  # dataset images drawn through the routing diagram
SAMPLES_PER_EXPERT = 10
SAMPLE_PX = 48  # a generated sample's side on the page, at least
MAX_DENSITY_PANELS = 8  # clusters drawn over the plane (4 per row)
INPUT_PX = 120  # a routed input image's side on the page

PAPERS = {
    "000": "V. Miroshnychenko, V. Tunik. MoA+: Mixture of Autoencoders with Various "
    "Concentrations for Enhanced Image Clustering.",
    "001": "P. Santos. A Mixture-of-Experts approach to deep image clustering: Estimating "
    "latent sizes and number of clusters.",
    "003": "M. H. G. D. Tissera. Data-dependent Resource Allocation and Routing in Multi-path "
    "Neural Networks for Vision-based Learning. PhD thesis, University of Moratuwa, 2023.",
    "004": "D. Tissera, K. Vithanage, R. Wijesinghe, A. Xavier, S. Jayasena, S. Fernando, "
    "R. Rodrigo. Neural Mixture Models with Expectation-Maximization for End-to-end Deep "
    "Clustering.",
}


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def about_section(analysis: explore.RunAnalysis, run_id: str, path: Path) -> Section:
    """Which model, data and settings, when and how it was made, with which versions."""
    meta, data = analysis.meta, analysis.dataset
    train, versions = _record(meta, "train"), _record(meta, "versions")
    settings = ", ".join(f"{k}={v}" for k, v in train.items() if k not in ("epochs", "seed"))
    rows = [
        ("Run", run_id),
        ("Model", analysis.config.model_type),
        ("Dataset", f"{data.name}: {len(data)} training samples, {data.num_classes} classes"),
        ("Epochs", f"{meta.get('epochs_done', '?')} of {train.get('epochs', '?')}"),
        ("Seed", str(train.get("seed", "?"))),
        ("Made", _made(meta, path)),
        ("Training settings", settings or "not recorded"),
        ("Trained with", ", ".join(f"{k} {v}" for k, v in versions.items()) or "not recorded"),
    ]
    if pretraining := _record(meta, "pretraining"):
        rows.append(("Pretraining found", _pretraining(pretraining)))
    config = json.dumps(analysis.config.to_dict(), indent=1)
    body = (
        facts_table(rows)
        + "<details><summary>Full model configuration</summary>"
        + f"<pre>{text(config)}</pre></details>"
    )
    return Section("About this run", body)


def _record(meta: dict, key: str) -> dict:
    """A nested record of the metadata, or {} when it is missing or not a record."""
    value = meta.get(key)
    return value if isinstance(value, dict) else {}


def _made(meta: dict, path: Path) -> str:
    """When (the save's stamp, else the file's date) and how (the gallery's recipe, the time
    the training took and how it ended)."""
    try:
        saved = time.strptime(str(meta["created"]), "%Y%m%d-%H%M%S")  # save_run's stamp
        when = time.strftime("%Y-%m-%d %H:%M", saved)
    except (KeyError, ValueError):
        when = time.strftime("file dated %Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
    gallery = _record(meta, "gallery")
    how = f", bundled gallery run made by {gallery.get('made_by', '?')}" if gallery else ""
    took = f", trained in {meta['seconds']} s" if "seconds" in meta else ""
    status = f" ({meta['status']})" if "status" in meta else ""
    return f"{when}{how}{took}{status}"


def _pretraining(record: dict) -> str:
    """Paper 001's pipeline in one line: clusters found, labelled share, manager scores."""
    keys = ("k_found", "labeled_fraction", "manager_acc", "latent_sizes")
    return ", ".join(f"{k}={record[k]}" for k in keys if k in record) or "no summary recorded"


def scores_section(analysis: explore.RunAnalysis) -> Section:
    """The headline scores as tiles and, for mixtures, how many samples each expert wins."""
    scores = analysis.scores
    tiles = "".join(
        f'<div class="tile"><div class="label">{text(label)}</div>'
        f'<div class="value">{text(value)}</div></div>'
        for label, value in score_tiles(scores, split="training samples")
    )
    if "accuracy" in scores:
        meaning = (
            "Accuracy: the share of images whose predicted class is right. Dead gates: the "
            "share of routing gates that stay below 0.1 or above 0.9 for every image, so they "
            "route nothing by the input (paper 003)."
        )
    else:
        meaning = (
            "ACC matches clusters to classes one-to-one (Hungarian); NMI and ARI compare the "
            "two partitions; clusters used: experts that win at least one sample."
        )
    body = (
        f'<div class="tiles">{tiles}</div><p>Measured over all {analysis.num_samples} training '
        f"samples, as the Latent space page measures them. {meaning}</p>"
    )
    papers: tuple[str, ...] = ("003",) if "accuracy" in scores else ()
    if "usage" in scores:
        body += figure_html(
            usage_figure({analysis.config.model_type: scores["usage"]}, height=300),
            "Share of the training samples each expert wins (the gate's most probable "
            "expert). One bar near 1 and the rest near 0 is a collapse: one expert took "
            "(almost) every sample, the expert dominance of paper 000.",
        )
        collapsed = collapse_message(scores["usage"], "expert", "")
        if collapsed:
            body += f'<p class="note">{text(collapsed)}</p>'
        papers += ("000",)
    return Section("Scores", body, papers=papers)


def latent_section(analysis: explore.RunAnalysis) -> Section | None:
    """The Latent page's map: a seeded sample of points, UMAP, the image of each on hover."""
    if analysis.dataset.kind != "image":
        return None  # 2-D points are their own map: see the densities
    total = analysis.num_samples
    indices = explore.sample_indices(total, _point_count(analysis))
    # What the model says of each image: its class for a classifier, else its cluster.
    mode = "true label" if "accuracy" in analysis.scores else "predicted cluster"
    images = thumbnails(explore.images(analysis, indices))
    fig = explore.latent_map(analysis, indices, mode, UmapParams(), images)
    css, body = LATENT_CSS, latent_body(fig, include_plotlyjs=False)
    shown = "all" if len(indices) == total else f"a seeded sample of {len(indices)} of the"
    caption = (
        f"Each point is one of {shown} {total} training samples, placed by a 2-D UMAP of its "
        f"latent code (as in paper 001's pipeline) and coloured by its {mode}. "
        "Hover over a point to see its image; drag a box to see the images inside it."
    )
    return Section("Latent map", body + caption_html(caption), css, papers=("001",))


def _point_count(analysis: explore.RunAnalysis) -> int:
    """At most MAX_POINTS, fewer when the images are big (colour, large): their thumbnails
    share THUMBNAIL_BYTES."""
    probe = explore.sample_indices(analysis.num_samples, PROBE_POINTS)
    uris = thumbnails(explore.images(analysis, probe))
    per_point = sum(map(len, uris)) / len(uris)
    affordable = max(PROBE_POINTS, int(THUMBNAIL_BYTES / per_point))
    return min(analysis.num_samples, MAX_POINTS, affordable)


def routing_section(analysis: explore.RunAnalysis, model: nn.Module) -> Section | None:
    """A model with gates: how it routes one or two training images (paper 003, Fig. 3.7)."""
    data = analysis.dataset
    if data.kind != "image" or not gate_vectors(model, data.x[:2].to(_device(model))):
        return None
    picks = _routing_inputs(data.y.numpy())
    images = data.x[torch.as_tensor(picks)].to(_device(model))
    views = routing_views(model, images)
    guesses = predictions(model, images, data)
    names = data.names_by_label
    rows = []
    for index, layers, guess in zip(picks, views, guesses, strict=True):
        image = picture_html(png_data_uri(data.x[index].numpy()), "routed input", INPUT_PX)
        label = names[int(data.y[index])]
        rows.append(
            f'<div class="routing-row"><div class="routing-input">{image}<br>'
            f"training sample #{index}, label {text(label)}<br><b>{text(guess.text)}</b></div>"
            f"<div>{figure_html(routing_diagram(layers))}</div></div>"
        )
    caption = (
        "Boxes: each routing layer's input tensors X and output tensors Y, red by their share "
        "of the layer's mean activation. Edges: gates g_ij, thicker and bluer when larger. "
        "Gray: the parallel layers between routing layers. A mixture's gate is one layer from "
        "the input to its experts (paper 003, Fig. 3.7; hover for the numbers)."
    )
    return Section("Routing", "".join(rows) + caption_html(caption), papers=("003",))


def _routing_inputs(labels: np.ndarray) -> list[int]:
    """The first sample and the first one of another class: two routes worth comparing."""
    other = np.flatnonzero(labels != labels[0])
    return [0, int(other[0])][:ROUTING_INPUTS] if len(other) else [0]


def samples_section(analysis: explore.RunAnalysis, model: nn.Module) -> Section | None:
    """Experts that decode codes into images: a row of generated samples per expert."""
    data = analysis.dataset
    if data.kind != "image":
        return None
    try:
        prior = generation.latent_prior(model, data.x.to(_device(model)))
    except generation.NotGenerative:
        return None
    rows = [
        generation.expert_samples(model, prior, k, SAMPLES_PER_EXPERT, seed=0)
        for k in range(len(prior.sizes))
    ]
    scale = max(1, -(-SAMPLE_PX // data.x.shape[-1]))
    grid = image_grid(np.concatenate(rows), columns=SAMPLES_PER_EXPERT, scale=scale, gap=2)
    picture = picture_html(picture_uri(grid), "generated samples per expert", grid.shape[1])
    caption = (
        f"Row k: {SAMPLES_PER_EXPERT} codes drawn from {generation.prior_name(prior)} for "
        "expert k, decoded by expert k (paper 001, Fig. 8). An expert that learned one "
        "cluster draws variations of it."
    )
    return Section(
        "What each expert generates",
        f"<figure>{picture}{caption_html(caption)}</figure>",
        papers=("001",),
    )


def density_section(analysis: explore.RunAnalysis, model: nn.Module) -> Section | None:
    """2-D points: each cluster's density over the plane (paper 004, Fig. 5, Table 1)."""
    if analysis.dataset.kind != "points":
        return None
    snapshot = plane_snapshot(model, analysis.dataset.x.to(_device(model)))
    k = snapshot["grid"].values.shape[0]
    clusters = list(range(min(k, MAX_DENSITY_PANELS)))
    label = analysis.config.model_type
    shown = "every cluster" if len(clusters) == k else f"the first {len(clusters)} of {k}"
    body = figure_html(
        density_contours({label: snapshot}, clusters),
        f"Panel j, for {shown}: cluster j's density h_j(x) over the plane as grey contours "
        "(one shared scale), with a sample of the training points coloured by the cluster "
        "they are assigned to, the panel's own larger (paper 004, Fig. 5). A model without "
        "densities shows its posterior p_j(x) instead.",
    )
    if snapshot["grid"].kind == "density":
        body += (
            "<p>Mean density of each cluster over one seeded batch of 128 training points, "
            "(1/n) Σᵢ h_j(xᵢ) (paper 004, Table 1): ≈ 0.5 for every cluster when the "
            "relevance scores are normalized, far from it when one cluster took over.</p>"
        )
        body += numbers_table(mean_density_table({"mean h_j": snapshot["mean_density"]}))
    return Section("Cluster densities over the plane", body, papers=("004",))


def sources_section(sections: list[Section]) -> Section | None:
    """The papers the captions cite, in number order."""
    cited = sorted({paper for section in sections for paper in section.papers})
    if not cited:
        return None
    items = "".join(f"<li>Paper {n}: {text(PAPERS[n])}</li>" for n in cited)
    return Section("Sources", f"<ul>{items}</ul>")
