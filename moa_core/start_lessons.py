"""The Start page's lesson cards as data: a question, a one-sentence answer teaser, and the
page (with its query) that shows the answer on a bundled gallery run.

Kept out of the page so the cards can be checked without a browser (every page is in the
app's navigation, every run is in the gallery) and timed by `benchmarks/lesson_cards.py`.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from moa_core.gallery import PREFIX as GALLERY_PREFIX
from moa_core.gallery import gallery_id, thumbnail_path


@dataclass(frozen=True)
class LessonCard:
    question: str
    teaser: str  # one sentence: what the page will show
    page: str  # the page's script, as app.py's `st.Page` names it
    page_title: str  # that page's title in the navigation
    run: str = ""  # the gallery name it opens on; "" for a page that needs no run
    params: tuple[tuple[str, str], ...] = ()  # the view's other query params
    thumbnail: str = ""  # the gallery name whose picture stands for the lesson

    @property
    def key(self) -> str:
        """The card's button key (also its CSS class `st-key-<key>`, which the browser
        tests and the benchmark click): the question in lowercase words."""
        return "start_" + "_".join(re.findall(r"[a-z0-9]+", self.question.lower()))

    @property
    def url_path(self) -> str:
        """Where the page lives in the app (Streamlit names it after the script)."""
        return "/" + Path(self.page).stem

    def query_params(self) -> dict[str, str]:
        """What the button puts in the target page's URL."""
        return ({"run": gallery_id(self.run)} if self.run else {}) | dict(self.params)

    def image(self) -> Path | None:
        """The thumbnail file, or None when there is none (yet)."""
        if not self.thumbnail:
            return None
        path = thumbnail_path(self.thumbnail)
        return path if path.is_file() else None

    def runs(self) -> list[str]:
        """Every gallery run the card opens: its `run` and those its params name (a page that
        compares two runs takes them as its own params)."""
        named = [
            v.removeprefix(GALLERY_PREFIX) for _, v in self.params if v.startswith(GALLERY_PREFIX)
        ]
        return ([self.run] if self.run else []) + named

    def missing(self, gallery_names: Collection[str]) -> str:
        """Why the card cannot open its page (one line), or "" when it can."""
        absent = [name for name in self.runs() if name not in gallery_names]
        if absent:
            return f"Not bundled here: `make gallery` builds `{absent[0]}`."
        return ""


LESSONS: tuple[LessonCard, ...] = (  # rows of three on the Start page
    LessonCard(
        "Why do experts collapse?",
        "In plain MoA one expert wins almost every image (see its usage bar); the next card "
        "shows the cure on the same digits.",
        "app_pages/latent.py",
        "Latent space",
        run="moa_digits",
        thumbnail="moa_digits",
    ),
    LessonCard(
        "How does MoA+ keep every expert busy?",
        "Minimax weights A = PΓ⁻¹ stop one expert taking every image, so the usage bar "
        "stays even and the clusters follow the digits.",
        "app_pages/latent.py",
        "Latent space",
        run="moa_plus_digits",
        thumbnail="moa_plus_digits",
    ),
    LessonCard(
        "What does a cluster look like?",
        "Each cluster of a neural mixture is a density over the plane: with relevance "
        "normalization they share the points, without it a few swallow everything.",
        "app_pages/distributions.py",
        "Cluster distributions",
        run="neural_em_2d_normalized",
        thumbnail="neural_em_2d_normalized",
    ),
    LessonCard(
        "How does a mixture choose its own number of clusters?",
        "A big VAE, PCA for the latent size, then UMAP and HDBSCAN count the clusters "
        "before any expert is trained: every step as a picture.",
        "app_pages/pretraining.py",
        "Pretraining pipeline",
        run="moe_vae_digits",
        thumbnail="moe_vae_digits",
    ),
    LessonCard(
        "What does each expert imagine?",
        "Draw samples from each VAE expert and walk along one latent dimension to see "
        "what it has learned to make.",
        "app_pages/experts.py",
        "Experts & latent walks",
        run="moe_vae_digits",
        thumbnail="moe_vae_digits",
    ),
    LessonCard(
        "Which digits does each cluster pick?",
        "For each cluster of a neural-EM model: the digits it scores highest and lowest, "
        "and an image synthesized to score higher still.",
        "app_pages/maximize.py",
        "Neuron maximization",
        run="neural_em_digits",
        thumbnail="neural_em_digits",
    ),
    LessonCard(
        "How does a network route an image?",
        "Follow a digit through parallel paths: each gate's edge is thicker and bluer the "
        "more of one path it passes on.",
        "app_pages/routing.py",
        "Routing",
        run="multipath_cc_reg",
        thumbnail="multipath_cc_reg",
    ),
    LessonCard(
        "What makes a gate fire?",
        "The digits that open a gate most and least, beside an image synthesized to open "
        "it more than any of them.",
        "app_pages/maximize.py",
        "Neuron maximization",
        run="multipath_cc_reg",
        thumbnail="multipath_cc_reg",
    ),
    LessonCard(
        "Do dead gates matter?",
        "Without gate regularization many gates stay shut or wide open for every image: "
        "the page opens on it beside the regularized network.",
        "app_pages/routing.py",
        "Routing",
        run="multipath_cc_noreg",
        params=(("tab", "vs"),),  # the Routing page's "With vs without regularization" tab
        thumbnail="multipath_cc_noreg",
    ),
    LessonCard(
        "Can a cluster draw its own digits?",
        "VaDE and DMVAE put a Gaussian mixture inside a VAE: each row is one cluster's "
        "samples, VaDE's cluster found by Bayes' rule, DMVAE's by its own encoder.",
        "app_pages/generative.py",
        "Generative mixtures",
        params=(
            ("source", "saved"),
            ("run_a", gallery_id("vade_digits")),
            ("run_b", gallery_id("dmvae_digits")),
        ),
        thumbnail="dmvae_digits",
    ),
    LessonCard(
        "Which gate carves the spiral?",
        "DVMoE's gate is a generative model's q(c|x), DeepMoE's a plain network: see where "
        "each sends the spiral's plane and how well its experts regress, then train both.",
        "app_pages/gated_regression.py",
        "Gated regression",
        params=(
            ("source", "saved"),
            ("run_a", gallery_id("dvmoe_spiral")),
            ("run_b", gallery_id("deep_moe_spiral")),
        ),
        thumbnail="dvmoe_spiral",
    ),
)
YOUR_OWN: tuple[LessonCard, ...] = (  # a row of their own, below the lessons
    LessonCard(
        "Train your own",
        "Pick a dataset and a mixture, press Start and watch the experts specialise live.",
        "app_pages/train.py",
        "Train",
    ),
    LessonCard(
        "Use your own pictures",
        "Upload a zip of class folders or a CSV of 2-D points and explore it on every page.",
        "app_pages/your_data.py",
        "Your data",
    ),
)
CARDS = LESSONS + YOUR_OWN
