"""Neuron maximization: for every cluster unit of an image model, the images it likes most and
least and the input synthesized to excite it (paper 004, Fig. 8)."""

from __future__ import annotations

import streamlit as st
from torch import nn

from app_pages.checkpoint_picker import pick_image_run
from moa_core.analysis.maximize import SynthesisSettings, UnitReport, maximize_units
from moa_core.analysis.routing import UnitChoice, unit_choices
from moa_core.data import Dataset
from moa_core.lessons import lesson_text, lesson_title
from moa_core.viz.maximize import activation_figure, maximization_grid

PREFIX = "max_"
TOP_K = 10
REPORTS = f"{PREFIX}reports"  # session cache: (run id, settings) → UnitReport


def report_for(
    run_id: str, model: nn.Module, data: Dataset, settings: SynthesisSettings, units: UnitChoice
) -> UnitReport:
    """Computed once per run, units and settings in this session, with a progress bar."""
    reports = st.session_state.setdefault(REPORTS, {})
    key = (run_id, settings, units.label)
    if key not in reports:
        bar = st.progress(0.0, text="Synthesizing one image per unit…")

        def progress(step: int, steps: int) -> None:
            if step % 8 == 0 or step == steps:
                bar.progress(step / steps, text=f"Synthesizing: step {step}/{steps}")

        x = data.x.to(next(model.parameters()).device)
        reports.clear()  # keep one report: images of a big model add up
        reports[key] = maximize_units(
            model, x, k=TOP_K, settings=settings, progress=progress, score_fn=units.score_fn
        )
        bar.empty()
    return reports[key]


st.title("Neuron maximization")
with st.expander(lesson_title("maximize")):
    st.markdown(lesson_text("maximize"))
choice, checkpoint, data = pick_image_run(
    PREFIX, "train an image model on the Train page and press **Save as run**"
)

model = checkpoint.model
choices = unit_choices(model, data.x[:2].to(next(model.parameters()).device))
c0, c1, c2, c3 = st.columns([3, 2, 2, 1])
units = choices[
    c0.selectbox(
        "Units",
        range(len(choices)),
        format_func=lambda i: choices[i].label,
        key="max_units",
        help="A routing gate's units are its pre-softmax scores a_ij (paper 003, Fig. 3.8).",
    )
]
steps = c1.slider("Synthesis steps", 32, 512, SynthesisSettings().steps, step=32, key="max_steps")
fourier = c2.toggle(
    "Fourier parametrization",
    key="max_fourier",
    help="Optimize the image's spectrum scaled by 1/frequency: bolder, smoother strokes.",
)
seed = c3.number_input("Seed", 0, 1_000_000, 0, key="max_seed")
settings = SynthesisSettings(steps=int(steps), fourier=bool(fourier), seed=int(seed))
report = report_for(choice.run_id, model, data, settings, units)

images = data.x.numpy()
extremes, synthesis = report.extremes, report.synthesis
scale = max(1, min(4, 48 // data.x.shape[-1]))
names = [units.row_name(u) for u in report.units]
st.markdown(
    f"**{checkpoint.config.model_type}** on `{data.name}`: each row is one unit. "
    f"Left: the {TOP_K} images that excite it most; middle: the {TOP_K} it likes least; "
    "right: the image synthesized from noise to excite it."
)
st.image(
    maximization_grid(images[extremes.top], images[extremes.bottom], synthesis.images, scale),
    caption=f"rows: {', '.join(names)} · top | bottom | synthesized",
)
st.markdown(
    f"The synthesized image excites its unit more than every dataset image for "
    f"**{report.units_beaten} of {len(report.units)}** units. "
    "Dotted lines: each unit's best dataset image."
)
st.plotly_chart(activation_figure(synthesis.history, report.best_dataset_scores, report.units))
st.dataframe(
    {
        "unit": names,
        "best dataset image": report.best_dataset_scores.round(3),
        "synthesized": synthesis.final_scores.round(3),
    },
    hide_index=True,
)
