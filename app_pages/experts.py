"""Experts & latent walks: what each expert of a MoE-VAE (or MoA) generates: samples, walks
along one latent dimension, interpolations, the all-ones probe (paper 001, Sec. IV.E).

The mode, the run, each tab's settings and the open tab live in the URL."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch
from torch import nn

from app_pages import presenter, url_state
from app_pages.checkpoint_picker import pick_image_run
from moa_core.analysis import generation
from moa_core.analysis.health import flat_experts, flat_experts_message
from moa_core.data import Dataset
from moa_core.lessons import lesson_text, lesson_title
from moa_core.ui_state import PIPELINE_RUN
from moa_core.viz.generation import walk_figure
from moa_core.viz.images import image_grid, png_bytes

PREFIX = "exp_"
PRIORS = f"{PREFIX}priors"  # run id → LatentPrior (MoA's is fitted to the data: do it once)
SESSION, PICK = "This session's pipeline", "A gallery, saved or uploaded run"
SOURCES, SOURCE_PARAMS = (SESSION, PICK), ("session", "run")  # the latter in the URL
DEFAULT_RUN = "gallery/moe_vae_digits"
TABS = {
    "samples": "Samples",
    "walk": "Latent walk",
    "between": "Interpolation",
    "probe": "All-ones probe",
}
MAX_SEED = 1_000_000
HEALTH_SAMPLES = 8  # samples per expert checked for a flat, untrained decoder
UNTRAINED_FIX = (
    "train it for more epochs (the Train page, or the last step of the Pretraining "
    "pipeline); a pipeline whose manager put every sample into one cluster needs more manager "
    "epochs first."
)


def session_model() -> tuple[str, nn.Module, Dataset] | None:
    """The mixture the Pretraining pipeline page trained in this session."""
    held = st.session_state.get(PIPELINE_RUN)
    if held is None:
        st.info(
            "No pipeline has run in this session: run it on the **Pretraining pipeline** page "
            "(the embedded digits need no files), or pick a saved run."
        )
        return None
    return f"session-{id(held)}", held.run.model, held.run.dataset


def picked_model() -> tuple[str, nn.Module, Dataset]:
    choice, checkpoint, data = pick_image_run(
        PREFIX, "run the Pretraining pipeline and press **Save as run**", DEFAULT_RUN
    )
    return choice.run_id, checkpoint.model, data


def prior_for(run_id: str, model: nn.Module, data: Dataset) -> generation.LatentPrior:
    priors = st.session_state.setdefault(PRIORS, {})
    if run_id not in priors:
        priors.clear()
        priors[run_id] = generation.latent_prior(model, data.x)
    return priors[run_id]


def scale_for(data: Dataset) -> int:
    return max(1, 64 // data.x.shape[-1])


def samples_view(model: nn.Module, prior: generation.LatentPrior, data: Dataset) -> None:
    with presenter.settings_box():
        c1, c2 = st.columns(2)
        count = c1.slider(
            "Samples per expert", 4, 16, url_state.url_number("n", 4, 16, 10), key=f"{PREFIX}count"
        )
        seed = c2.number_input(
            "Seed",
            0,
            MAX_SEED,
            url_state.url_number("seed", 0, MAX_SEED, 0),
            key=f"{PREFIX}sample_seed",
        )
    url_state.publish(n=count, seed=int(seed))
    rows = expert_rows(model, prior, count, int(seed))
    grid = image_grid(np.concatenate(rows), columns=count, scale=scale_for(data) // 2 or 1, gap=2)
    st.image(
        grid,
        caption=f"Row k: {count} codes drawn from {generation.prior_name(prior)} for expert "
        "k, decoded by expert k (paper 001, Fig. 8).",
    )
    st.download_button(
        "Download these samples (PNG)",
        lambda: png_bytes(grid),  # encoded on the click only
        file_name="expert_samples.png",
        mime="image/png",
        key=f"{PREFIX}samples_png",
    )


def expert_rows(
    model: nn.Module, prior: generation.LatentPrior, count: int, seed: int
) -> list[np.ndarray]:
    """`count` samples per expert, one array [count, C, H, W] per expert."""
    return [
        generation.expert_samples(model, prior, k, count, seed) for k in range(len(prior.sizes))
    ]


def walk_view(model: nn.Module, prior: generation.LatentPrior, data: Dataset) -> None:
    k = len(prior.sizes)
    with presenter.settings_box():
        c1, c2, c3 = st.columns(3)
        expert = c1.selectbox(
            "Expert",
            range(k),
            index=url_state.url_index("expert", range(k), 0),
            format_func=lambda e: f"expert {e + 1}",
            key=f"{PREFIX}walk_e",
        )
        dims = range(prior.sizes[expert])
        dim = c2.selectbox(
            "Latent dimension",
            dims,
            index=url_state.url_index("dim", dims, 0),
            format_func=lambda d: f"z{d + 1}",
            key=f"{PREFIX}walk_d",
        )
        value = c3.slider(
            "z",
            -3.0,
            3.0,
            url_state.url_number("z", -3.0, 3.0, 0.0),
            step=0.25,
            key=f"{PREFIX}walk_z",
        )
    url_state.publish(expert=expert, dim=dim, z=value)
    values, images = generation.latent_walk(model, prior, expert, dim, steps=25)
    scale = scale_for(data)
    at = int(np.argmin(np.abs(values - value)))
    left, right = st.columns([1, 2])
    left.image(
        image_grid(images[at : at + 1], scale=scale),
        caption=f"expert {expert + 1}, z{dim + 1} = {values[at]:+.2f}"
        + (" σ" if prior.fitted or prior.per_cluster else ""),
    )
    presenter.chart(
        walk_figure(images, values, f"Walk along z{dim + 1} of expert {expert + 1}", scale),
        right,
        key=f"{PREFIX}walk_fig",
    )


def interpolation_view(model: nn.Module, prior: generation.LatentPrior, data: Dataset) -> None:
    k, last = len(prior.sizes), len(data) - 1
    with presenter.settings_box():
        c1, c2, c3 = st.columns(3)
        first = c1.number_input(
            "First image (index)",
            0,
            last,
            url_state.url_number("from", 0, last, 0),
            key=f"{PREFIX}i_a",
        )
        second = c2.number_input(
            "Second image (index)",
            0,
            last,
            url_state.url_number("to", 0, last, min(1, last)),
            key=f"{PREFIX}i_b",
        )
        expert = c3.selectbox(
            "Through expert",
            range(k),
            index=url_state.url_index("via", range(k), 0),
            format_func=lambda e: f"expert {e + 1}",
            key=f"{PREFIX}i_e",
        )
    url_state.publish(**{"from": int(first), "to": int(second), "via": expert})
    path = generation.interpolation(model, expert, data.x[int(first)], data.x[int(second)], 9)
    ends = torch.stack([data.x[int(first)], data.x[int(second)]]).numpy()
    scale = scale_for(data) // 2 or 1
    st.image(
        image_grid(np.concatenate([ends[:1], path, ends[1:]]), columns=11, scale=scale, gap=2),
        caption="Left and right: the two images; between them, expert "
        f"{expert + 1}'s decoding of the straight line between their codes.",
    )


def probe_view(model: nn.Module, data: Dataset) -> None:
    images = generation.all_ones_probe(model, tuple(data.x.shape[1:]))
    st.image(
        image_grid(images, columns=len(images), scale=scale_for(data) // 2 or 1, gap=2),
        caption="Left: an image with every pixel at 1; then its reconstruction by experts "
        "1 … K. Each expert pulls the blank input towards its own cluster (paper 001, Fig. 7).",
    )


st.title("Experts & latent walks")
url_state.start_page()
with st.expander(lesson_title("experts")):
    st.markdown(lesson_text("experts"))
# Without a pipeline in this session, the gallery's MoE-VAE is what there is to show.
opening = "session" if st.session_state.get(PIPELINE_RUN) is not None else "run"
source = st.radio(
    "Model",
    SOURCES,
    index=url_state.url_index("mode", SOURCE_PARAMS, opening),
    horizontal=True,
    key=f"{PREFIX}mode",
)
url_state.publish(mode=SOURCE_PARAMS[SOURCES.index(source)])
chosen = session_model() if source == SESSION else picked_model()
if chosen is None:
    st.stop()
run_id, model, data = chosen
try:
    prior = prior_for(run_id, model, data)
except generation.NotGenerative as err:
    st.error(str(err))
    st.stop()
st.caption(
    f"{len(prior.sizes)} experts, latent sizes {', '.join(map(str, prior.sizes))}, "
    f"on `{data.name}`."
)
flat = flat_experts(np.stack(expert_rows(model, prior, HEALTH_SAMPLES, 0)))
untrained = flat_experts_message(flat, len(prior.sizes), UNTRAINED_FIX)
if untrained:
    st.warning(untrained)
samples, walk, between, probe = url_state.url_tabs("tab", TABS, key=f"{PREFIX}tab")
with samples:
    samples_view(model, prior, data)
with walk:
    walk_view(model, prior, data)
with between:
    interpolation_view(model, prior, data)
with probe:
    probe_view(model, data)
