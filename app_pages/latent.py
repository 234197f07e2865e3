"""Latent space: a gallery, saved or uploaded checkpoint's latent codes in 2-D, with images on
hover. The run, colour mode, points shown and UMAP neighbours live in the URL."""

from __future__ import annotations

import streamlit as st

from app_pages import presenter, url_state
from app_pages.checkpoint_picker import CheckpointChoice, pick_checkpoint
from moa_core import explore, ui_state
from moa_core.analysis.embedding import UmapParams
from moa_core.analysis.health import collapse_message
from moa_core.checkpoint import CheckpointError
from moa_core.data import DatasetError
from moa_core.device import resolve_device
from moa_core.lessons import lesson_text, lesson_title
from moa_core.viz.images import thumbnails
from moa_core.viz.latent import latent_html, latent_html_height
from moa_core.viz.training import usage_figure

USER_ERRORS = (CheckpointError, DatasetError)
DEFAULT_RUN = "gallery/moa_plus_digits"
COLOR_PARAMS = ("cluster", "label", "entropy")  # the URL's words for explore.COLOR_MODES
NEIGHBOURS = (5, 50, 15)  # the UMAP neighbours slider: low, high, default


@st.cache_resource(max_entries=4, show_spinner="Running the model over its training set…")
def analysed(run_id: str, _choice: CheckpointChoice) -> explore.RunAnalysis:
    """Keyed by the run id, which changes when the file is rewritten or another is uploaded."""
    device = resolve_device("auto")
    return explore.analyse(_choice.load(device), run_id, device)


@st.cache_data(max_entries=8, show_spinner=False)
def point_thumbnails(run_id: str, count: int, _analysis: explore.RunAnalysis) -> list[str] | None:
    """PNG data URIs of the plotted points (keyed by run and the seeded sample size); None
    for 2-D points, which have no picture to show."""
    if _analysis.dataset.kind != "image":
        return None
    indices = explore.sample_indices(_analysis.num_samples, count)
    return thumbnails(explore.images(_analysis, indices))


st.title("Latent space")
url_state.start_page()
with st.expander(lesson_title("latent")):
    st.markdown(lesson_text("latent"))
choice = pick_checkpoint(
    "latent_", "train one on the Train page and press **Save as run**", DEFAULT_RUN
)
try:
    analysis = analysed(choice.run_id, choice)
except USER_ERRORS as err:
    st.error(str(err))
    st.stop()

scores = analysis.scores
tiles = ui_state.score_tiles(scores, split="training samples")
for column, (label, value) in zip(st.columns(len(tiles)), tiles, strict=True):
    column.metric(label, value)
st.caption(
    f"{analysis.config.model_type} on `{analysis.dataset.name}`: scores over all "
    f"{analysis.num_samples} training samples after {analysis.meta.get('epochs_done', '?')} "
    "epoch(s)."
)

left, right = st.columns([3, 2])
if "usage" in scores:  # classifiers have accuracy instead of expert usage
    presenter.chart(usage_figure({analysis.config.model_type: scores["usage"]}, height=260), left)
    fix = ui_state.collapse_fix(analysis.config.model_type, comparing=False)
    collapsed = collapse_message(scores["usage"], "expert", fix)
    if collapsed:
        left.warning(collapsed)
with right, presenter.settings_box():
    mode = st.radio(
        "Colour by",
        explore.COLOR_MODES,
        index=url_state.url_index("color", COLOR_PARAMS, "cluster"),
        horizontal=True,
        key="latent_color",
    )
    points = explore.points_slider(analysis.num_samples)
    if points is None:
        max_points = analysis.num_samples
        st.caption(f"All {analysis.num_samples} points are shown.")
        url_state.forget("points")
    else:
        low, high, default = points
        max_points = st.slider(
            "Points shown (seeded sample)",
            low,
            high,
            url_state.url_number("points", low, high, default),
            step=explore.POINTS_STEP,
            key=f"latent_points_{analysis.num_samples}",  # another run starts at its default
        )
        url_state.publish(points=max_points)
    neighbours = st.slider(
        "UMAP neighbours",
        *NEIGHBOURS[:2],
        url_state.url_number("nn", *NEIGHBOURS),
        key="latent_neighbours",
        help="Small: local detail; large: global layout.",
    )
    url_state.publish(color=COLOR_PARAMS[explore.COLOR_MODES.index(mode)], nn=neighbours)

indices = explore.sample_indices(analysis.num_samples, max_points)
with st.spinner("Computing the UMAP embedding…"):
    figure = explore.latent_map(
        analysis,
        indices,
        mode,
        UmapParams(n_neighbors=neighbours),
        point_thumbnails(analysis.run_id, len(indices), analysis),
    )
st.iframe(latent_html(figure), height=latent_html_height(figure), alt="Latent space scatter")
