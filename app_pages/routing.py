"""Routing: how a trained network routes an input through its parallel paths (paper 003,
Fig. 3.7), and what its gates do over a dataset (Fig. 3.9, 3.10, 5.1).

The run, the inputs (dataset image numbers), the histogram's gates and classes, the weights
layer, the compared run and the open tab live in the URL."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch
from torch import nn

from app_pages import presenter, url_state
from app_pages.checkpoint_picker import choice_for, load_with_data, pick_image_run
from app_pages.image_picker import pick_image
from moa_core.analysis.gates import (
    all_gates,
    class_gate_values,
    compare_gate_runs,
    routing_gates,
    same_gate_layout,
)
from moa_core.analysis.routing import gate_vectors, predictions, routing_views
from moa_core.checkpoint import CheckpointError
from moa_core.data import DatasetError
from moa_core.lessons import lesson_text, lesson_title
from moa_core.metrics import dead_gate_fraction
from moa_core.run_menu import counterparts, describe, run_menu
from moa_core.viz.images import to_rgb_uint8
from moa_core.viz.routing import (
    class_gate_histograms,
    gate_response_figure,
    path_weight_histograms,
    routing_diagram,
)

PREFIX = "route_"
DEFAULT_RUN = "gallery/multipath_cc_reg"
COUNTS = (1, 2, 3)  # inputs side by side
TABS = {
    "classes": "Class-wise gate histograms",
    "weights": "Weights of parallel paths",
    "vs": "With vs without regularization",
}
RESPONSE_SAMPLES = 150  # inputs shown in the regularized-vs-not response plot (Fig. 5.1)


@st.cache_resource(max_entries=4, show_spinner="Running the model over the dataset…")
def gates_over_data(run_id: str, _model: nn.Module, _x: torch.Tensor) -> list[np.ndarray]:
    """Every gate over the run's data, once per run id (the widgets rerun the page)."""
    return routing_gates(_model, _x)


st.title("Routing")
url_state.start_page()
with st.expander(lesson_title("routing")):
    st.markdown(lesson_text("routing"))
choice, checkpoint, data = pick_image_run(
    PREFIX,
    "train multipath_cc on the Train page and press **Save as run** (mixtures work too)",
    DEFAULT_RUN,
)
model = checkpoint.model
device = next(model.parameters()).device
all_x = data.x.to(device)
vectors = gate_vectors(model, all_x[:2])
if not vectors:
    st.info(
        f"{checkpoint.config.model_type} has no gates to draw: it is the single-path baseline. "
        "Pick a multipath_cc, multipath_cp or mixture run."
    )
    st.stop()

st.subheader("Routing diagram")
with presenter.settings_box("Inputs"):
    count = st.radio(
        "Inputs side by side",
        COUNTS,
        index=url_state.url_index("inputs", COUNTS, 2),
        horizontal=True,
        key=f"{PREFIX}count",
    )
    url_state.publish(inputs=count)
    url_state.forget(*(f"img{slot}" for slot in range(count, max(COUNTS))))
    picked = []
    for slot, column in enumerate(st.columns(count)):
        with column:
            picked.append(pick_image(slot, data, PREFIX, f"img{slot}"))
chosen = [p for p in picked if p is not None]
if chosen:
    images = torch.from_numpy(np.stack([image for image, _ in chosen])).to(device)
    views = routing_views(model, images)
    st.caption(
        "Boxes: each routing layer's input tensors X and output tensors Y, red by their share "
        "of the layer's mean activation. Edges: gates g_ij, thicker and bluer when larger. "
        "Gray: the parallel forward layers between routing layers. Hover for the numbers."
    )
    guesses = predictions(model, images, data)
    for (image, caption), layers, guess in zip(chosen, views, guesses, strict=True):
        left, right = st.columns([1, 6], vertical_alignment="center")
        left.image(to_rgb_uint8(image), caption=caption, width=120)
        left.markdown(f"**{guess.text}**")
        presenter.chart(routing_diagram(layers), right)

st.subheader("Gates over the dataset")
gates = all_gates(vectors)
values = gates_over_data(choice.run_id, model, all_x)
labels = data.y.numpy()
names = data.names_by_label
dead = dead_gate_fraction(values)
st.markdown(
    f"**{len(gates)} gates** in {len(vectors)} gate vectors; **{dead:.0%}** are dead on "
    f"`{data.name}` (below 0.1 or above 0.9 for every one of its {len(data)} images)."
)
by_class, by_path, by_run = url_state.url_tabs("tab", TABS, key=f"{PREFIX}tab")
with by_class:
    with presenter.settings_box():
        c1, c2 = st.columns(2)
        gate_ids = list(range(len(gates)))
        picked_gates = c1.multiselect(
            "Gates",
            gate_ids,
            default=url_state.url_list("gates", gate_ids, sorted({0, len(gates) - 1})),
            format_func=lambda g: gates[g].label,
            key=f"{PREFIX}hist_gates",
        )
        picked_classes = c2.multiselect(
            "Classes",
            list(names),
            default=url_state.url_list("classes", list(names), list(names)[:4]),
            format_func=lambda c: names[c],
            key=f"{PREFIX}hist_classes",
        )
    url_state.publish(gates=picked_gates, classes=picked_classes)
    if picked_gates and picked_classes:
        chosen_gates = [gates[g] for g in picked_gates]
        per_class = class_gate_values(
            values, labels, {c: names[c] for c in picked_classes}, chosen_gates
        )
        presenter.chart(class_gate_histograms(per_class))
    else:
        st.info("Choose at least one gate and one class.")
with by_path:
    layers = model.parallel_layers() if hasattr(model, "parallel_layers") else {}
    if not layers:
        st.info(f"{checkpoint.config.model_type} has no parallel paths to compare.")
    else:
        layer_names = list(layers)
        numbers = range(len(layer_names))  # the URL names a layer by its number
        with presenter.settings_box():
            number = st.selectbox(
                "Layer",
                numbers,
                index=url_state.url_index("layer", numbers, 0),
                format_func=layer_names.__getitem__,
                key=f"{PREFIX}weights_layer",
            )
        url_state.publish(layer=number)
        layer = layer_names[number]
        presenter.chart(path_weight_histograms(layers[layer].cpu().numpy(), layer))
with by_run:
    alike = counterparts(
        run_menu("image"),
        choice.listed_id,
        checkpoint.config.model_type,
        checkpoint.meta.get("dataset"),
        "gate_reg",
        getattr(checkpoint.config, "gate_reg", None),
    )
    others = {run.run_id: run for run in alike}  # the run with the other gate_reg first
    if not others:
        st.info(
            f"Save a second {checkpoint.config.model_type} run on `{data.name}` with the other "
            "gate regularization (Train page, **Compare** trains both) to compare them here."
        )
        st.stop()
    other_ids = list(others)
    with presenter.settings_box():
        other_id = st.selectbox(
            "Compare with run",
            other_ids,
            index=url_state.url_index("vs", other_ids, other_ids[0]),
            format_func=lambda r: describe(others[r]),
            key=f"{PREFIX}other",
        )
    url_state.publish(vs=other_id)
    other_choice = choice_for(others[other_id])
    try:
        other, _ = load_with_data(other_choice.run_id, other_choice)
    except (CheckpointError, DatasetError) as err:
        st.error(str(err))
        st.stop()
    other_values = gates_over_data(other_choice.run_id, other.model, all_x)
    if not same_gate_layout(values, other_values):
        st.warning(f"{other_id} routes through other gates (paths or layers differ): pick another.")
        st.stop()
    runs = {
        f"this run (gate_reg={getattr(checkpoint.config, 'gate_reg', '?')})": values,
        f"{other_id} (gate_reg={getattr(other.config, 'gate_reg', '?')})": other_values,
    }
    comparison = compare_gate_runs(runs, gates, RESPONSE_SAMPLES)
    labelled = {
        f"{label}: {comparison.dead[label]:.0%} of gates dead": response
        for label, response in comparison.responses.items()
    }
    presenter.chart(gate_response_figure(labelled, comparison.gate.label))
    st.caption(
        f"{comparison.gate.label}, the gate that stays lowest in the run with more dead gates, "
        f"on the same {RESPONSE_SAMPLES} images of `{data.name}` (paper 003, Fig. 5.1)."
    )
