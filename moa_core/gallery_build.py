"""`make gallery`: train every recipe of `moa_core.gallery.RECIPES` through the same code as
`moa train` (seeded, on the CPU), save it as an ordinary checkpoint whose metadata holds the
recipe and the scores `moa eval` reproduces, and draw its thumbnail.

    python -m moa_core.gallery_build [--only NAME ...] [--out DIR]

Writes DIR/checkpoints/NAME.safetensors and DIR/gallery/NAME.png (DIR: assets/). One progress
line per recipe goes to stderr, one JSON line of scores per recipe to stdout. Kept apart from
`moa_core.gallery`, which every page imports, because this imports the trainer.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from moa_core.analysis.outputs import collect_outputs
from moa_core.checkpoint import save_checkpoint
from moa_core.data import Dataset, DatasetError
from moa_core.gallery import ASSETS, GALLERY_DIR, RECIPES, THUMBNAIL_DIR, GalleryRecipe
from moa_core.metrics import expert_usage
from moa_core.models import ConfigError
from moa_core.train.pretraining import (
    PIPELINE_MODELS,
    PipelineStopped,
    PretrainSettings,
    run_pipeline,
)
from moa_core.train.run import TrainedRun, test_samples, train_model
from moa_core.viz.thumbnails import (
    canvas_plane,
    gate_ranges,
    image_rows,
    point_clusters,
    thumbnail_png,
)

MADE_BY = "make gallery"
SHOWN = 16  # images per expert a thumbnail may draw (as many as fit)


class GalleryError(ValueError):
    """A recipe that cannot be built, in one line."""


def train_recipe(
    recipe: GalleryRecipe, progress: Callable[[str], None] | None = None
) -> tuple[TrainedRun, dict[str, Any]]:
    """The trained run and its checkpoint meta, exactly as `moa train` would make them: pipeline
    families (paper 001's MoE-VAE) pretrain first and carry the pipeline record."""
    if recipe.model in PIPELINE_MODELS:
        settings, final = PretrainSettings.take({**recipe.settings, **recipe.pretraining})
        pipeline = run_pipeline(recipe.dataset, settings, final, progress)
        return pipeline.run, pipeline.checkpoint_meta()
    if recipe.pretraining:
        raise GalleryError(f"{recipe.model} has no pretraining")
    run = train_model(recipe.model, recipe.dataset, dict(recipe.settings))
    if run.result.status != "finished":
        raise GalleryError(f"training {run.result.status}: {run.result.message}")
    return run, run.checkpoint_meta()


def scored_samples(run: TrainedRun) -> tuple[str, Dataset]:
    """The split `moa eval` scores as the run's metrics, and its samples: the training samples
    of a clustering (the default), a classifier's held-out side (`--split test`). The trainer's
    final metrics were computed by `evaluate` on exactly these."""
    test = test_samples(run.config, run.dataset.name)
    return ("train", run.dataset) if test is None else ("test", test)


def _cluster_rows(model: nn.Module, data: Dataset) -> np.ndarray:
    """Per expert, the images it wins, most confident first."""
    outputs = collect_outputs(model, data.x)
    k = outputs.gate_probs.shape[1]
    groups = []
    for expert in range(k):
        won = np.flatnonzero(outputs.clusters == expert)
        order = won[np.argsort(-outputs.gate_probs[won, expert], kind="stable")]
        groups.append(data.x[order[:SHOWN]].numpy())
    return image_rows(groups, expert_usage(outputs.clusters, k))


def _point_clusters(model: nn.Module, data: Dataset) -> np.ndarray:
    """The points by cluster, on the region of the plane each cluster wins."""
    points = data.x.numpy()
    outputs = collect_outputs(model, data.x)
    regions = collect_outputs(model, torch.from_numpy(canvas_plane(points))).clusters
    return point_clusters(points, outputs.clusters, outputs.gate_probs.shape[1], regions)


def _gate_ranges(model: nn.Module, data: Dataset) -> np.ndarray:
    return gate_ranges(collect_outputs(model, data.x).routing_gates)


# A recipe's `thumbnail` names one of these: (trained model on the CPU, scored samples) → picture.
THUMBNAILS: dict[str, Callable[[nn.Module, Dataset], np.ndarray]] = {
    "clusters": _cluster_rows,
    "points": _point_clusters,
    "gates": _gate_ranges,
}


def build(
    recipe: GalleryRecipe, out: Path = ASSETS, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Train `recipe`, write its checkpoint and thumbnail under `out`; its scores as one dict."""
    if recipe.thumbnail not in THUMBNAILS:
        raise GalleryError(f"no thumbnail '{recipe.thumbnail}' (known: {', '.join(THUMBNAILS)})")
    start = time.perf_counter()
    # Training also draws from torch's global generator (a VAE's sampling noise): seeding it
    # makes a recipe's weights independent of what ran before it in this process.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.settings["seed"])
        run, meta = train_recipe(recipe, progress)
    split, samples = scored_samples(run)
    meta["gallery"] = {
        "name": recipe.name,
        "title": recipe.title,
        "lesson": recipe.lesson,
        "recipe": recipe.to_dict(),
        "split": split,
        "made_by": MADE_BY,
    }
    path = out / GALLERY_DIR.name / f"{recipe.name}.safetensors"
    save_checkpoint(path, run.model, run.config, meta)
    thumbnail = out / THUMBNAIL_DIR.name / f"{recipe.name}.png"
    thumbnail.parent.mkdir(parents=True, exist_ok=True)
    model = run.model.cpu().eval()
    thumbnail.write_bytes(thumbnail_png(THUMBNAILS[recipe.thumbnail](model, samples.to("cpu"))))
    scores = {k: round(v, 4) if isinstance(v, float) else v for k, v in meta["metrics"].items()}
    return {
        "name": recipe.name,
        "model": recipe.model,
        "dataset": run.dataset.name,
        "split": split,
        "seconds": round(time.perf_counter() - start, 1),
        **scores,
        "usage": [round(u, 3) for u in meta["usage"]],
        "bytes": path.stat().st_size,
        "checkpoint": str(path),
        "thumbnail": str(thumbnail),
    }


def _parser() -> argparse.ArgumentParser:
    names = [recipe.name for recipe in RECIPES]
    parser = argparse.ArgumentParser(
        prog="python -m moa_core.gallery_build",
        description="Train the bundled gallery runs (seeded) and draw their thumbnails.",
    )
    parser.add_argument(
        "--only", nargs="+", choices=names, metavar="NAME", help=f"only these: {', '.join(names)}"
    )
    parser.add_argument(
        "--out", type=Path, default=ASSETS, help="folder for checkpoints/ and gallery/ (assets/)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Small models on a few shared cores train faster and far steadier on one thread, and the
    # weights a seed gives then do not depend on the machine's core count (with two they differ).
    torch.set_num_threads(1)
    chosen = [r for r in RECIPES if args.only is None or r.name in args.only]
    say = partial(print, file=sys.stderr, flush=True)
    for number, recipe in enumerate(chosen, 1):
        say(f"gallery {number}/{len(chosen)}: {recipe.name}: {recipe.model} on {recipe.dataset}")
        try:
            line = build(recipe, args.out, lambda step, name=recipe.name: say(f"  {name}: {step}"))
        except (GalleryError, ConfigError, DatasetError, PipelineStopped) as err:
            say(f"gallery: error: {recipe.name}: {err}")
            return 2
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
