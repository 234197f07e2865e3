"""Generative mixtures: VaDE beside DMVAE (paper 002, §8.1), trained live on the same data and
seed and redrawn after every epoch, or two saved runs side by side."""

from __future__ import annotations

import numpy as np
import streamlit as st

from app_pages import presenter, url_state
from app_pages.checkpoint_picker import CheckpointChoice, choice_for, load_with_data
from app_pages.job_panel import (
    JobPanel,
    link_numbers,
    show_dataset_problem,
    show_scores,
    snapshot_parts,
    train_live,
)
from app_pages.run_pair import pick_pair, saved_source_chosen
from moa_core import ui_state
from moa_core.analysis.generative import (
    PAIR,
    GenerativeSettings,
    GenerativeView,
    generative_datasets,
    generative_view,
)
from moa_core.analysis.health import collapse_message, flat_experts, flat_experts_message
from moa_core.checkpoint import CheckpointError, read_metadata
from moa_core.data import DatasetError
from moa_core.lessons import lesson_text, lesson_title
from moa_core.train.jobs import JobSpec
from moa_core.viz.generative import (
    cluster_samples_figure,
    cluster_scatter,
    image_scale,
    progress_figure,
    reconstruction_pairs_figure,
    square_extent,
)

PREFIX = "gen_"
POLL_SECONDS = 2.0  # a redraw is three figures per run: never queue redraws
COLUMN_PX = 440  # an image grid's width in one of two columns at 1280 px
# Each number widget's range, which is also what a link may ask for.
LIMITS = {
    "num_clusters": (0, 30),
    "latent_dim": (1, 64),
    "epochs": (1, 500),
    "batch_size": (2, 1000),
    "max_samples": (0, 100_000),
    "seed": (0, 1_000_000),
    "pretrain_epochs": (1, 200),
}
PARAMS = {  # `GenerativeSettings` field → query parameter
    "dataset": "dataset",
    "num_clusters": "k",
    "latent_dim": "latent",
    "epochs": "epochs",
    "batch_size": "batch",
    "max_samples": "samples",
    "seed": "seed",
    "pretraining": "pretrain",
    "pretrain_epochs": "pretrain_epochs",
}

panel = JobPanel(PREFIX)


def link_settings() -> GenerativeSettings:
    """The link's settings, each checked: a bad one is the default and a phrase in the note."""
    d = GenerativeSettings()
    return GenerativeSettings(
        dataset=url_state.url_choice(PARAMS["dataset"], generative_datasets(), d.dataset),
        pretraining=url_state.url_flag(PARAMS["pretraining"], d.pretraining),
        **link_numbers(d, PARAMS, LIMITS),
    )


def settings_panel(locked: bool) -> str | None:
    with presenter.settings_box(), st.container(border=True):
        c1, c2, c3, c4, c5 = st.columns(5)
        c1.selectbox(
            "Dataset",
            generative_datasets(),
            key=f"{PREFIX}dataset",
            disabled=locked,
            help="digits: 1,797 handwritten 16×16 digits; usps and mnist need their files; "
            "spiral25k: the paper's 5-arm spiral (25,000 points, subsampled by Max samples).",
        )
        c2.number_input(
            "K (clusters)",
            *LIMITS["num_clusters"],
            key=f"{PREFIX}num_clusters",
            disabled=locked,
            help="0: one cluster per class of the data.",
        )
        c3.number_input("Epochs", *LIMITS["epochs"], key=f"{PREFIX}epochs", disabled=locked)
        c4.number_input(
            "Max samples",
            *LIMITS["max_samples"],
            step=500,
            key=f"{PREFIX}max_samples",
            disabled=locked,
            help="Train on a seeded random subset; 0 = all samples.",
        )
        c5.number_input("Seed", *LIMITS["seed"], key=f"{PREFIX}seed", disabled=locked)
        c1, c2, c3, c4, c5 = st.columns(5, vertical_alignment="bottom")
        c1.number_input(
            "Latent size", *LIMITS["latent_dim"], key=f"{PREFIX}latent_dim", disabled=locked
        )
        c2.number_input(
            "Batch size", *LIMITS["batch_size"], key=f"{PREFIX}batch_size", disabled=locked
        )
        c3.toggle(
            "VaDE pretraining",
            key=f"{PREFIX}pretraining",
            disabled=locked,
            help="Off: VaDE starts from its random prior, the case the paper says fails "
            "(§8.1.2). DMVAE never pretrains.",
        )
        c4.number_input(
            "Pretraining epochs",
            *LIMITS["pretrain_epochs"],
            key=f"{PREFIX}pretrain_epochs",
            disabled=locked or not st.session_state[f"{PREFIX}pretraining"],
            help="VaDE trains as a plain VAE for these epochs, then a GMM fitted to its codes "
            "becomes its prior (spec §4.6).",
        )
        panel.delay_slider(c5)
    return show_dataset_problem(st.session_state[f"{PREFIX}dataset"])


def image_rows(views: dict[str, GenerativeView]) -> None:
    """Figs. 6–7 (samples per cluster) and 4–5 (originals and reconstructions), one column
    per run."""
    st.subheader("Samples per cluster")
    st.caption(
        "Row k: images decoded from z ~ N(μ_k, σ²_k), cluster k's learned prior (paper 002, "
        "Figs. 6–7). A good mixture draws one kind of digit per row, a different one per row."
    )
    for (label, view), column in zip(views.items(), st.columns(len(views)), strict=True):
        samples = view.generated
        scale = image_scale(samples.shape[-1], samples.shape[1], COLUMN_PX)
        flat = flat_experts_message(
            flat_experts(samples), len(samples), "more epochs or more samples."
        )
        if flat:
            column.warning(flat)
        column.plotly_chart(
            cluster_samples_figure(samples, scale, title=label),
            key=f"{PREFIX}samples_{label}",
            width="content",
            config={"staticPlot": True},
        )
    st.subheader("Original and reconstruction")
    st.caption(
        "The same images before and after the autoencoder: z = μ̃ + σ̃ε with one ε, decoded "
        "(Figs. 4–5)."
    )
    for (label, view), column in zip(views.items(), st.columns(len(views)), strict=True):
        pairs = view.originals, view.reconstructions
        scale = image_scale(pairs[0].shape[-1], 10, COLUMN_PX - 20)
        column.markdown(f"**{label}**")
        column.plotly_chart(
            reconstruction_pairs_figure(*pairs, scale),
            key=f"{PREFIX}pairs_{label}",
            width="content",
            config={"staticPlot": True},
        )


def point_rows(views: dict[str, GenerativeView]) -> None:
    """Figs. 10–11 (points generated per cluster) and 8–9 (data and reconstructions) on one
    window for both runs."""
    first = next(iter(views.values()))
    extent = square_extent(first.originals)
    st.subheader("Points generated by each cluster")
    st.caption(
        f"{first.generated.shape[1]} points per cluster decoded from z ~ N(μ_k, σ²_k) "
        "(Figs. 10–11): a good mixture draws each arm in its own colour."
    )
    for (label, view), column in zip(views.items(), st.columns(len(views)), strict=True):
        k, n = view.generated.shape[:2]
        generated = view.generated.reshape(-1, 2), np.repeat(np.arange(k), n)
        presenter.chart(
            cluster_scatter([("generated", *generated)], k, extent, title=label),
            column,
            key=f"{PREFIX}generated_{label}",
        )
    st.subheader("Data and reconstruction")
    st.caption(
        "Left: the data, coloured by the cluster q(c|x) picks; right: each point's "
        "reconstruction, z = μ̃ + σ̃ε with one ε (Figs. 8–9): tight curves or a wide band?"
    )
    for (label, view), column in zip(views.items(), st.columns(len(views)), strict=True):
        k, shown = len(view.usage), view.clusters[: len(view.originals)]
        panels = [("data", view.originals, shown), ("reconstruction", view.reconstructions, shown)]
        presenter.chart(
            cluster_scatter(panels, k, extent, title=label),
            column,
            key=f"{PREFIX}recon_{label}",
        )


def latent_rows(views: dict[str, GenerativeView]) -> None:
    st.subheader("Latent space")
    st.caption(
        "Left: codes drawn from each cluster's prior; right: the encoder means μ̃(x) of the "
        "data, coloured by q(c|x). The paper draws t-SNE of the prior samples (Figs. 6–7, "
        "10–11, right); here a PCA, fast enough to redraw live."
    )
    for (label, view), column in zip(views.items(), st.columns(len(views)), strict=True):
        k, m = view.prior_2d.shape[:2]
        panels = [
            ("prior samples", view.prior_2d.reshape(-1, 2), np.repeat(np.arange(k), m)),
            ("encoded data", view.encoded_2d, view.clusters),
        ]
        title = f"{label}: {view.projection}"
        presenter.chart(
            cluster_scatter(panels, k, title=title), column, key=f"{PREFIX}latent_{label}"
        )


def draw_views(views: dict[str, GenerativeView]) -> None:
    if next(iter(views.values())).kind == "image":
        image_rows(views)
    else:
        point_rows(views)
    latent_rows(views)


def collapse_line(spec: JobSpec, usage: np.ndarray, where) -> None:
    """A word when one cluster takes (almost) everything, instead of silent grey."""
    verdict = collapse_message(usage, "cluster", ui_state.run_collapse_fix(spec, True))
    if verdict:
        where.warning(verdict)


def live_view(was_active: bool) -> None:
    jobs = panel.jobs()
    if not jobs:
        st.info(
            "Press **Start**: VaDE and DMVAE train side by side on the same data and seed, "
            "and every figure below is redrawn after each epoch."
        )
        return
    views = panel.views(jobs, was_active)
    snapshots = {job.spec.label: (views[job.id]["snapshot"] or {}) for job in jobs}
    for job, column in zip(jobs, st.columns(len(jobs)), strict=True):
        with column:
            panel.header(job, views[job.id])
            panel.results(job)
            panel.save_controls(job)
            generative = snapshots[job.spec.label].get("generative")
            if generative is not None and views[job.id]["epochs"]:
                collapse_line(job.spec, generative.usage, st)
    scores = {job.spec.label: views[job.id]["epochs"] for job in jobs}
    elbos = {label: snap.get("elbo_history", []) for label, snap in snapshots.items()}
    presenter.chart(progress_figure(scores, elbos), key=f"{PREFIX}progress")
    st.caption(
        "Which converges first? The paper: DMVAE in 200–300 epochs, VaDE in 500–700 "
        "(§8.1.2). ELBO: minus the loss on the training samples, z = μ̃; open markers: "
        "VaDE's pretraining epochs (a plain VAE, before the GMM fit)."
    )
    shown = snapshot_parts(jobs, views, "generative")
    if len(shown) == len(jobs):
        draw_views(shown)
    else:
        st.caption("The figures appear as soon as both trainings start.")


@st.cache_resource(max_entries=8, show_spinner="Sampling and encoding…")
def saved_generative_view(run_id: str, _choice: CheckpointChoice) -> GenerativeView:
    """A saved run's figures from the samples it trained on (cached per run)."""
    checkpoint, data = load_with_data(run_id, _choice)
    device = next(checkpoint.model.parameters()).device
    return generative_view(checkpoint.model, data.to(device))


def saved_view() -> None:
    """Two gallery or saved runs of the pair, picked here, drawn as the live view draws."""
    empty = (
        "No saved VaDE or DMVAE runs yet: train them on the Train page and press "
        "**Save as run**, or run `moa train vade --dataset digits` and "
        "`moa train dmvae --dataset digits`."
    )
    views = {}
    for side, run_id, run, column in pick_pair(PREFIX, PAIR, empty):
        try:
            view = saved_generative_view(run_id, choice_for(run))
            config, _ = read_metadata(run.path)
        except (CheckpointError, DatasetError, OSError) as err:
            column.error(str(err))
            return
        label = f"{side}: {run.model_type}"
        views[label] = view
        with column:
            metrics, usage = run.meta.get("metrics") or {}, run.meta.get("usage")
            if usage and "acc" in metrics:
                show_scores({**metrics, "usage": usage})
            st.metric("ELBO per sample", f"{view.elbo:.2f}")
            dataset = str(run.meta.get("dataset"))
            collapse_line(JobSpec(run.model_type, dataset, config, label), view.usage, st)
    if views:
        draw_views(views)


st.title("Generative mixtures")
url_state.start_page()
with st.expander(lesson_title("generative")):
    st.markdown(lesson_text("generative"))
if saved_source_chosen(PREFIX):
    saved_view()
else:
    train_live(
        panel, GenerativeSettings, link_settings, PARAMS, settings_panel, live_view, POLL_SECONDS
    )
