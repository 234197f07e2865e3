"""Latent space: a saved or uploaded checkpoint's latent codes in 2-D, with images on hover."""

from __future__ import annotations

import hashlib
from pathlib import Path

import streamlit as st

from moa_core import explore, ui_state
from moa_core.analysis.embedding import UmapParams
from moa_core.checkpoint import CheckpointError, RunInfo, list_runs, load_checkpoint
from moa_core.data import DatasetError
from moa_core.device import resolve_device
from moa_core.lessons import lesson_text, lesson_title
from moa_core.uploads import load_uploaded_checkpoint
from moa_core.viz.images import thumbnails
from moa_core.viz.latent import latent_html, latent_html_height, latent_scatter
from moa_core.viz.training import usage_figure

SAVED, UPLOAD = "Saved run", "Upload a checkpoint"
USER_ERRORS = (CheckpointError, DatasetError)


@st.cache_resource(max_entries=4, show_spinner="Running the model over its training set…")
def analysed_run(path: str, mtime: float) -> explore.RunAnalysis:
    """The mtime is in the key and in the run id, so a rewritten file gets fresh UMAP/thumbnails."""
    device = resolve_device("auto")
    run_id = f"{Path(path).stem}@{mtime}"
    return explore.analyse(load_checkpoint(Path(path), device), run_id, device)


@st.cache_resource(max_entries=4, show_spinner="Checking the checkpoint…")
def analysed_upload(digest: str, name: str, _data: bytes) -> explore.RunAnalysis:
    device = resolve_device("auto")
    loaded = load_uploaded_checkpoint(name, _data, device)
    return explore.analyse(loaded, f"upload-{digest[:12]}", device)


@st.cache_data(max_entries=8, show_spinner=False)
def point_thumbnails(run_id: str, count: int, _analysis: explore.RunAnalysis) -> list[str]:
    """PNG data URIs of the plotted points (keyed by run and the seeded sample size)."""
    indices = explore.sample_indices(_analysis.num_samples, count)
    return thumbnails(explore.images(_analysis, indices))


def describe(run: RunInfo) -> str:
    nmi = (run.meta.get("metrics") or {}).get("nmi")
    score = f", NMI {nmi:.2f}" if isinstance(nmi, float) else ""
    return f"{run.run_id} ({run.model_type}, {run.meta.get('dataset', '?')}{score})"


def choose_checkpoint() -> explore.RunAnalysis:
    """The source picker; stops the page with one line when there is nothing (valid) to show."""
    source = st.radio("Checkpoint", [SAVED, UPLOAD], horizontal=True, key="latent_source")
    if source == SAVED:
        runs = {run.run_id: run for run in list_runs()}
        if not runs:
            st.info(
                "No saved runs yet: train one on the Train page and press **Save as run**, "
                "or upload a checkpoint."
            )
            st.stop()
        run_id = st.selectbox(
            "Run", list(runs), key="latent_run", format_func=lambda r: describe(runs[r])
        )
        run = runs[run_id]
        return analysed_run(str(run.path), run.path.stat().st_mtime)
    upload = st.file_uploader("Checkpoint file", type=["safetensors"], key="latent_upload")
    if upload is None:
        st.info(
            "Upload a `.safetensors` checkpoint saved by Mixture Lab (`moa train` or "
            "**Save as run**). It is validated and never unpickled."
        )
        st.stop()
    data = upload.getvalue()
    return analysed_upload(hashlib.sha256(data).hexdigest(), upload.name, data)


st.title("Latent space")
with st.expander(lesson_title("latent")):
    st.markdown(lesson_text("latent"))
try:
    analysis = choose_checkpoint()
except USER_ERRORS as err:
    st.error(str(err))
    st.stop()

scores = analysis.scores
for column, (label, value) in zip(st.columns(4), ui_state.score_tiles(scores), strict=True):
    column.metric(label, value)
st.caption(
    f"{analysis.config.model_type} on `{analysis.dataset.name}`: scores over all "
    f"{analysis.num_samples} training samples after {analysis.meta.get('epochs_done', '?')} "
    "epoch(s)."
)

left, right = st.columns([3, 2])
left.plotly_chart(usage_figure({analysis.config.model_type: scores["usage"]}, height=260))
with right:
    mode = st.radio("Colour by", explore.COLOR_MODES, horizontal=True, key="latent_color")
    max_points = st.slider(
        "Points shown (seeded sample)",
        200,
        3000,
        explore.DEFAULT_MAX_POINTS,
        step=100,
        key="latent_points",
    )
    neighbours = st.slider(
        "UMAP neighbours",
        5,
        50,
        15,
        key="latent_neighbours",
        help="Small: local detail; large: global layout.",
    )

indices = explore.sample_indices(analysis.num_samples, max_points)
with st.spinner("Computing the UMAP embedding…"):
    xy = explore.embed(analysis, indices, UmapParams(n_neighbors=neighbours))
colors = explore.point_colors(analysis, indices, mode)
figure = latent_scatter(
    xy,
    colors.values,
    categorical=colors.categories is not None,
    categories=colors.categories,
    color_title=mode,
    hover_text=explore.hover_texts(analysis, indices),
    thumbnails=point_thumbnails(analysis.run_id, len(indices), analysis),
)
st.iframe(latent_html(figure), height=latent_html_height(figure), alt="Latent space scatter")
