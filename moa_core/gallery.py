"""The bundled gallery: one small trained run per family and lesson, read-only, so every
exploring page opens on something before anyone trains.

The files live in `assets/checkpoints/` and are ordinary validated checkpoints; their run ids
are `gallery/<name>` so they never clash with a saved run's id. `RECIPES` says how each is made
and what it teaches; `make gallery` (`python -m moa_core.gallery_build`) trains them, seeded,
with the recipe and the scores `moa eval` reproduces in each file's metadata.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from moa_core.checkpoint import RunInfo, scan_runs

ASSETS = Path(__file__).resolve().parent.parent / "assets"
GALLERY_DIR = ASSETS / "checkpoints"
THUMBNAIL_DIR = ASSETS / "gallery"
PREFIX = "gallery/"


def gallery_id(name: str) -> str:
    return f"{PREFIX}{name}"


def is_gallery(run_id: str) -> bool:
    return run_id.startswith(PREFIX)


def gallery_runs(directory: Path = GALLERY_DIR) -> list[RunInfo]:
    """Every bundled run, ids `gallery/<name>`, in name order."""
    runs = scan_runs(directory).runs
    return sorted(
        (replace(run, run_id=gallery_id(run.path.stem)) for run in runs), key=lambda run: run.run_id
    )


def thumbnail_path(name: str) -> Path:
    return THUMBNAIL_DIR / f"{name}.png"


# Every bundled run trains from seed 0 on the CPU, where the same seed gives the same weights.
BUILD_SETTINGS: Mapping[str, Any] = {"seed": 0, "device": "cpu"}


@dataclass(frozen=True)
class GalleryRecipe:
    """One bundled run: the question it answers and how `make gallery` trains it, in the terms
    of `moa train MODEL --dataset DATASET --set KEY=VALUE …` (so anyone can retrain it)."""

    name: str
    title: str
    lesson: str  # the question the run answers, as a lesson card asks it
    model: str
    dataset: str
    overrides: Mapping[str, Any] = field(default_factory=dict)  # model and training settings
    pretraining: Mapping[str, Any] = field(default_factory=dict)  # `PretrainSettings`' fields
    thumbnail: str = "clusters"  # how its picture is drawn: a key of gallery_build.THUMBNAILS

    @property
    def settings(self) -> dict[str, Any]:
        """Every `--set` the run trains with: the build's seed and device, then the recipe's."""
        return {**BUILD_SETTINGS, **self.overrides}

    @property
    def command(self) -> str:
        """The `moa train` line that retrains it (without `--out`: a new run in runs/)."""
        settings = {**self.settings, **self.pretraining}
        values = [shlex.quote(f"{key}={_cli_value(value)}") for key, value in settings.items()]
        return f"moa train {self.model} --dataset {self.dataset} --set {' '.join(values)}"

    def to_dict(self) -> dict[str, Any]:
        """What a bundled file's metadata records under `gallery.recipe`."""
        recipe = {"model": self.model, "dataset": self.dataset, "overrides": self.settings}
        return recipe | ({"pretraining": dict(self.pretraining)} if self.pretraining else {})


# Sizes are chosen for `make gallery` on a 2-core CPU in a few minutes and ≤ 15 MB in all;
# benchmarks/RESULTS.md has the longer runs these lessons come from.
RECIPES: tuple[GalleryRecipe, ...] = (
    GalleryRecipe(
        "moa_digits",
        "MoA on digits: one expert takes every image",
        "Why do experts collapse?",
        "moa",
        "digits",
        {"epochs": 10},
    ),
    GalleryRecipe(
        "moa_plus_digits",
        "MoA+ on digits: minimax weights keep all ten experts at work",
        "How does MoA+ cure the collapse?",
        "moa_plus",
        "digits",
        {"epochs": 10},
    ),
    GalleryRecipe(
        "neural_em_digits",
        "Neural EM on digits: ten clusters from Sobel images, trained two-fold",
        "What does a cluster look like?",
        "neural_em",
        "digits",
        {"epochs": 8, "conv_channels": [16, 32, 64]},
    ),
    GalleryRecipe(
        "neural_em_2d_normalized",
        "Neural EM on 2-D blobs with relevance normalization: one density per blob",
        "What does a cluster's density look like?",
        "neural_em",
        "blobs",
        {"epochs": 60, "normalize": True},
        thumbnail="points",
    ),
    GalleryRecipe(
        "neural_em_2d_plain",
        "Neural EM on 2-D blobs without normalization: one cluster swallows the plane",
        "Why normalize the relevance scores?",
        "neural_em",
        "blobs",
        {"epochs": 60, "normalize": False},
        thumbnail="points",
    ),
    GalleryRecipe(
        "multipath_cc_reg",
        "Two paths with cross-connections and gate regularization: every gate alive",
        "How does a network route an image?",
        "multipath_cc",
        "digits",
        {"epochs": 15},
        thumbnail="gates",
    ),
    GalleryRecipe(
        "multipath_cc_noreg",
        "The same network without gate regularization: dead gates",
        "Do dead gates matter?",
        "multipath_cc",
        "digits",
        {"epochs": 15, "gate_reg": 0.0},
        thumbnail="gates",
    ),
    GalleryRecipe(
        "moe_vae_digits",
        "MoE-VAE on digits: the pipeline finds the number of clusters itself",
        "How does a mixture choose its own number of clusters?",
        "moe_vae",
        "digits",
        {"epochs": 5},  # longer, one expert drifts to most images: ACC 0.65 → 0.47 by epoch 20
        pretraining={"vae_epochs": 40, "manager_epochs": 20},
    ),
    GalleryRecipe(
        "vade_digits",
        "VaDE on digits: a Gaussian-mixture prior, q(c|x) by Bayes' rule on one code",
        "How does a generative mixture assign a cluster?",
        "vade",
        "digits",
        {},  # `moa train vade` defaults: 30 VAE epochs, the GMM fit, 70 VaDE epochs (~20 s)
    ),
    GalleryRecipe(
        "dmvae_digits",
        "DMVAE on digits: its own categorical encoder q(c|x), no pretraining",
        "How does a generative mixture assign a cluster?",
        "dmvae",
        "digits",
        {"epochs": 100},  # as many epochs as vade_digits, so the two compare side by side
    ),
    GalleryRecipe(
        "dvmoe_spiral",
        "DVMoE on the spiral: the DMVAE gate finds the arms, each expert fits its arm's map",
        "Which gate carves the spiral?",
        "dvmoe",
        "spiral25k",
        {},  # `moa train dvmoe` defaults: all 25,000 points, output size 1 (paper 002, Table 1)
        thumbnail="points",
    ),
    GalleryRecipe(
        "deep_moe_spiral",
        "DeepMoE on the spiral: an MLP gate over the same affine experts",
        "Which gate carves the spiral?",
        "deep_moe",
        "spiral25k",
        {},
        thumbnail="points",
    ),
)


def _cli_value(value: Any) -> str:
    """A `--set` value as `moa train` reads it: strings bare, the rest as compact JSON."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def recipe(name: str) -> GalleryRecipe:
    """The recipe called `name`; KeyError names the known ones."""
    for candidate in RECIPES:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no gallery recipe '{name}' (known: {', '.join(r.name for r in RECIPES)})")
