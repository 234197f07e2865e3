"""Cluster distributions: each cluster's density over a 2-D plane, trained live here or drawn
from a gallery or saved run beside its counterpart (the same model with normalization off)."""

from __future__ import annotations

import json

import streamlit as st

from app_pages import presenter, url_state
from app_pages.checkpoint_picker import (
    RUN_PARAM,
    CheckpointChoice,
    choice_for,
    load_with_data,
    pick_checkpoint,
)
from app_pages.job_panel import (
    JobPanel,
    link_numbers,
    show_dataset_problem,
    show_scores,
    snapshot_parts,
    train_live,
)
from moa_core import ui_state
from moa_core.analysis.density import PlaneSnapshot, plane_snapshot
from moa_core.analysis.health import collapse_message
from moa_core.checkpoint import CheckpointError, LoadedCheckpoint
from moa_core.data import DatasetError
from moa_core.gallery import gallery_id
from moa_core.lessons import lesson_text, lesson_title
from moa_core.run_menu import run_menu
from moa_core.train.jobs import JobSpec
from moa_core.viz.density import density_contours, mean_density_table

POLL_SECONDS = 2.0  # six contour panels take a browser ~1 s to redraw: never queue redraws
PREFIX = "dist_"
DEFAULT_SHOWN = 3  # paper 004, Fig. 5 draws three clusters
TRAIN_HERE, SAVED = "Train here", "A saved run"
DEFAULT_RUN = gallery_id("neural_em_2d_normalized")  # beside gallery/neural_em_2d_plain
# Each number widget's range, which is also what a link may ask for.
LIMITS = {"num_clusters": (0, 30), "epochs": (1, 500), "lr": (1e-5, 1.0), "seed": (0, 1_000_000)}
# The query parameter of each `PlaneSettings` field in a shared link.
PARAMS = {
    "dataset": "dataset",
    "model_type": "model",
    "num_clusters": "k",
    "epochs": "epochs",
    "seed": "seed",
    "lr": "lr",
    "side_by_side": "side",
}

panel = JobPanel(PREFIX)


def link_settings() -> ui_state.PlaneSettings:
    """The link's settings, each checked: a bad one is the default and a phrase in the
    page's one-line note."""
    d = ui_state.PlaneSettings()
    return ui_state.PlaneSettings(
        dataset=url_state.url_choice(PARAMS["dataset"], ui_state.point_datasets(), d.dataset),
        model_type=url_state.url_choice(
            PARAMS["model_type"], ui_state.point_model_types(), d.model_type
        ),
        **link_numbers(d, PARAMS, LIMITS),
        side_by_side=url_state.url_flag(PARAMS["side_by_side"], d.side_by_side),
    )


def settings_panel(locked: bool) -> str | None:
    with presenter.settings_box(), st.container(border=True):
        c1, c2, c3, c4, c5 = st.columns(5)
        c1.selectbox(
            "2-D dataset",
            ui_state.point_datasets(),
            key=f"{PREFIX}dataset",
            disabled=locked,
            help="digits2d / mnist2d / usps2d: the 2-unit bottleneck of a supervised CNN "
            "(paper 004, Fig. 4a); the others are drawn on the fly.",
        )
        c2.selectbox(
            "Model", ui_state.point_model_types(), key=f"{PREFIX}model_type", disabled=locked
        )
        c3.number_input(
            "K (clusters)",
            *LIMITS["num_clusters"],
            key=f"{PREFIX}num_clusters",
            disabled=locked,
            help="0: one cluster per class of the data.",
        )
        c4.number_input("Epochs", *LIMITS["epochs"], key=f"{PREFIX}epochs", disabled=locked)
        c5.number_input("Seed", *LIMITS["seed"], key=f"{PREFIX}seed", disabled=locked)
        c1, c2, c3 = st.columns([1, 2, 2])
        c1.number_input(
            "Learning rate",
            *LIMITS["lr"],
            step=1e-4,
            format="%.4f",
            key=f"{PREFIX}lr",
            disabled=locked,
        )
        switched_off = ui_state.ablation(st.session_state[f"{PREFIX}model_type"])
        c2.toggle(
            f"Side by side: {switched_off[0]}" if switched_off else "Side by side",
            key=f"{PREFIX}side_by_side",
            disabled=locked or switched_off is None,
            help="Train a second copy with the model's key idea switched off (same data, seed).",
        )
        panel.delay_slider(c3)
    return show_dataset_problem(st.session_state[f"{PREFIX}dataset"])


def draw_planes(planes: dict[str, PlaneSnapshot], key: str) -> None:
    """The cluster selector, the contours of each run's chosen clusters in one figure, and
    paper 004's Table 1 of mean densities. `key`: a new one (another run, new jobs with
    maybe another K) starts the selector from its default."""
    options = list(range(next(iter(planes.values()))["grid"].values.shape[0]))
    clusters = st.multiselect(
        "Clusters to draw",
        options,
        default=options[:DEFAULT_SHOWN],
        format_func=lambda j: f"cluster {j + 1}",
        key=f"{PREFIX}shown_{key}",
    )
    if clusters:
        presenter.chart(density_contours(planes, clusters), key="contours")
    st.markdown(
        "**Mean density over one batch of 128 points**, (1/n) Σᵢ h_j(xᵢ) "
        "(paper 004, Table 1): ≈ 0.5 for every cluster when the scores are normalized."
    )
    means = {label: plane["mean_density"] for label, plane in planes.items()}
    st.dataframe(mean_density_table(means), hide_index=True)


def live_view(was_active: bool) -> None:
    jobs = panel.jobs()
    if not jobs:
        st.info(
            "Press **Start**: the model trains on the plane and each chosen cluster's density "
            "is redrawn after every epoch. Use *Slow down* to watch it form."
        )
        return
    views = panel.views(jobs, was_active)
    for job, column in zip(jobs, st.columns(len(jobs)), strict=True):
        with column:
            panel.header(job, views[job.id])
            panel.results(job)
            metrics = ui_state.final_metrics(job)
            fix = ui_state.run_collapse_fix(job.spec, comparing=len(jobs) > 1)
            verdict = metrics and collapse_message(metrics["usage"], "cluster", fix)
            if verdict:
                st.warning(verdict)
    planes = snapshot_parts(jobs, views, "plane")
    if planes:
        draw_planes(planes, str(jobs[0].id))
    else:
        st.caption("The densities appear as soon as the training starts.")


@st.cache_resource(max_entries=8, show_spinner="Drawing the densities over the plane…")
def run_plane(run_id: str, _choice: CheckpointChoice) -> PlaneSnapshot:
    """A saved 2-D run's densities over the plane of the points it trained on (cached)."""
    checkpoint, data = load_with_data(run_id, _choice)
    device = next(checkpoint.model.parameters()).device
    return plane_snapshot(checkpoint.model, data.x.to(device))


def saved_run(choice: CheckpointChoice) -> LoadedCheckpoint | None:
    """The chosen run, checked to be a model of 2-D points; else None and one line."""
    try:
        checkpoint, data = load_with_data(choice.run_id, choice)
    except (CheckpointError, DatasetError) as err:
        st.error(str(err))
        return None
    if data.kind != "points":
        st.info(
            f"{checkpoint.config.model_type} on `{data.name}` takes images: this page draws "
            "models of 2-D points, such as the gallery's neural_em_2d runs."
        )
        return None
    return checkpoint


def saved_view() -> None:
    """The chosen run's densities and, when the run list holds it, its counterpart's beside
    them, so "why normalize?" is answered without training anything."""
    hint = "train one here, or `moa train neural_em --dataset blobs`"
    choice = pick_checkpoint(PREFIX, hint, DEFAULT_RUN, kind="points")
    checkpoint = saved_run(choice)
    if checkpoint is None:
        return
    shown = [(choice, checkpoint)]
    config, dataset = saved_config(checkpoint), str(checkpoint.meta.get("dataset"))
    partner = ui_state.ablation_partner(config, dataset, run_menu("points").runs.values())
    if partner is not None and (partner_checkpoint := saved_run(choice_for(partner))):
        shown.append((choice_for(partner), partner_checkpoint))
    # The run with the family's key idea first, as when both train here side by side.
    shown.sort(key=lambda run: ablated(run[1]) is not None)
    planes = {}
    for (run_choice, run), column in zip(shown, st.columns(len(shown)), strict=True):
        off = ablated(run)
        label = f"{run.config.model_type} {off}" if off else run.config.model_type
        with column:
            run_header(run_choice, run, label, comparing=len(shown) > 1)
        planes[label] = run_plane(run_choice.run_id, run_choice)
    draw_planes(planes, choice.run_id)


def saved_config(run: LoadedCheckpoint) -> dict:
    """The run's model settings as its file holds them (JSON: lists, not tuples)."""
    return json.loads(run.config.to_json())


def ablated(run: LoadedCheckpoint) -> str | None:
    """Its ablation's label ("without normalization") when the run has its family's key
    idea switched off, else None."""
    return ui_state.ablation_label(run.config.model_type, saved_config(run))


def run_header(
    choice: CheckpointChoice, run: LoadedCheckpoint, label: str, comparing: bool
) -> None:
    """What the live view says of a finished job: name, scores, a collapse verdict."""
    meta = run.meta
    name = choice.run_id.split("@")[0] if choice.path else "the uploaded run"
    st.markdown(f"**{label}** on `{meta.get('dataset', '?')}` · {name}")
    metrics, usage = meta.get("metrics") or {}, meta.get("usage")
    if not usage or "acc" not in metrics:
        return
    show_scores({**metrics, "usage": usage})
    spec = JobSpec(run.config.model_type, str(meta.get("dataset")), saved_config(run), label)
    verdict = collapse_message(usage, "cluster", ui_state.run_collapse_fix(spec, comparing))
    if verdict:
        st.warning(verdict)


st.title("Cluster distributions")
url_state.start_page()
with st.expander(lesson_title("distributions")):
    st.markdown(lesson_text("distributions"))
st.session_state.setdefault(f"{PREFIX}view", SAVED if RUN_PARAM in st.query_params else TRAIN_HERE)
view = st.radio(
    "Source",
    (TRAIN_HERE, SAVED),
    horizontal=True,
    key=f"{PREFIX}view",
    help="A saved run draws at once: the gallery's 2-D neural EM with normalization, "
    "beside the same model without it.",
)
if view == TRAIN_HERE:
    url_state.forget(RUN_PARAM)
    train_live(
        panel,
        ui_state.PlaneSettings,
        link_settings,
        PARAMS,
        settings_panel,
        live_view,
        POLL_SECONDS,
    )
else:
    saved_view()
