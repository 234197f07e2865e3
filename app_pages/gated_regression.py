"""Gated regression: DVMoE beside DeepMoE on a 2-D set, trained live on the same samples,
targets and seed (paper 002, §7–8.2): the gates' regions, the predictions over the plane,
each expert against its class's true map, and Table 1 beside this session's numbers; or two
saved runs (the gallery's pair) drawn the same way, without training."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from app_pages import presenter, url_state
from app_pages.checkpoint_picker import CheckpointChoice, choice_for, load_with_data
from app_pages.job_panel import (
    JobPanel,
    link_numbers,
    show_dataset_problem,
    snapshot_parts,
    train_live,
)
from app_pages.run_pair import pick_pair, saved_source_chosen
from moa_core import ui_state
from moa_core.analysis import gated_regression as analysis
from moa_core.analysis.gated_regression import RegressionPlane
from moa_core.analysis.health import collapse_message
from moa_core.checkpoint import CheckpointError
from moa_core.data import DatasetError
from moa_core.lessons import lesson_text, lesson_title
from moa_core.train.jobs import Job
from moa_core.viz import gated_regression as viz

PREFIX = "greg_"
POLL_SECONDS = 2.0
RESULTS = f"{PREFIX}results"  # output dim → {model name: test error, baselines}
LIMITS = {
    "latent_dim": (1, 64),
    "epochs": (1, 500),
    "max_samples": (0, 25_000),
    "seed": (0, 1_000_000),
    "target_seed": (0, 1_000_000),
}
PARAMS = {  # `RegressionSettings` field → query parameter of a shared link
    "dataset": "dataset",
    "output_dim": "out",
    "latent_dim": "latent",
    "epochs": "epochs",
    "max_samples": "n",
    "seed": "seed",
    "target_seed": "tseed",
}
FIX = "Try another seed or more epochs: the experts then share the plane."

panel = JobPanel(PREFIX)


def link_settings() -> analysis.RegressionSettings:
    """The link's settings, each checked: a bad one is the default and a phrase in the
    page's one-line note."""
    d = analysis.RegressionSettings()
    return analysis.RegressionSettings(
        dataset=url_state.url_choice(PARAMS["dataset"], ui_state.point_datasets(), d.dataset),
        output_dim=url_state.url_choice(PARAMS["output_dim"], analysis.OUTPUT_DIMS, d.output_dim),
        **link_numbers(d, PARAMS, LIMITS),
    )


def settings_panel(locked: bool) -> str | None:
    with presenter.settings_box(), st.container(border=True):
        c1, c2, c3, c4 = st.columns(4)
        c1.selectbox(
            "2-D dataset",
            ui_state.point_datasets(),
            key=f"{PREFIX}dataset",
            disabled=locked,
            help="spiral25k: paper 002's 5-arm spiral on its own scale (Table 1's data).",
        )
        c2.selectbox(
            "Output dim (Table 1 row)",
            analysis.OUTPUT_DIMS,
            key=f"{PREFIX}output_dim",
            disabled=locked,
            help="Size of each target y = W_c x + b_c. The paper calls its rows 'dimensions "
            "of z', but they behave like output sizes (spec 002, §2.3a).",
        )
        c3.number_input(
            "Epochs",
            *LIMITS["epochs"],
            key=f"{PREFIX}epochs",
            disabled=locked,
            help="The paper trains for hundreds; 20 take about a minute on two CPU cores.",
        )
        c4.number_input(
            "Training points",
            *LIMITS["max_samples"],
            step=1000,
            key=f"{PREFIX}max_samples",
            disabled=locked,
            help="A seeded subset of the training side (0: all of it). The test side, on "
            "which every error is measured, is always whole.",
        )
        c1, c2, c3, c4 = st.columns(4)
        c1.number_input(
            "DVMoE latent size",
            *LIMITS["latent_dim"],
            key=f"{PREFIX}latent_dim",
            disabled=locked,
            help="z of the DMVAE gate; DeepMoE has none.",
        )
        c2.number_input("Seed", *LIMITS["seed"], key=f"{PREFIX}seed", disabled=locked)
        c3.number_input(
            "Target seed",
            *LIMITS["target_seed"],
            key=f"{PREFIX}target_seed",
            disabled=locked,
            help="Draws the per-class maps W_c, b_c that make the targets.",
        )
        panel.delay_slider(c4)
    return show_dataset_problem(st.session_state[f"{PREFIX}dataset"])


@st.cache_data(max_entries=16, show_spinner="Fitting the baselines…")
def baselines_of(
    spec: str, output_dim: int, target_seed: int, max_samples: int, seed: int
) -> dict[str, float]:
    return analysis.regression_baselines(spec, output_dim, target_seed, max_samples, seed)


def job_baselines(job: Job) -> dict[str, float]:
    o = job.spec.overrides
    return baselines_of(
        job.spec.dataset, o["output_dim"], o["target_seed"], o["max_samples"], o["seed"]
    )


def job_header(job: Job, view: dict, baselines: dict[str, float]) -> None:
    """Name, status and progress, then the latest test error and the gate's use of experts."""
    panel.header(job, view)
    if view["epochs"]:
        scores(view["epochs"][-1], baselines, job.done)


def scores(metrics: dict, baselines: dict[str, float], finished: bool) -> None:
    """The test error, as a share of the targets' variance, and the experts the gate uses;
    a finished run that leaves experts idle says so."""
    error = metrics["regression_mse"]
    c1, c2, c3 = st.columns(3)
    c1.metric("Test error", f"{error:.3g}", help="Σ_outputs (ŷ − y)², mean over the test side")
    c2.metric("÷ Var(y)", f"{error / baselines['target_variance']:.2%}")
    c3.metric("Experts used", f"{metrics['clusters_used']}/{len(metrics['usage'])}")
    if finished:
        verdict = collapse_message(metrics["usage"], "expert", FIX)
        if verdict:
            st.warning(verdict)


def remember_results(jobs: list[Job], views: dict[int, dict], baselines: dict) -> None:
    """This session's Table 1 row for the jobs' output dim: their latest test errors."""
    out = int(jobs[0].spec.overrides["output_dim"])
    row = {"baselines": baselines}
    for job in jobs:
        if views[job.id]["epochs"]:
            row[job.spec.label] = views[job.id]["epochs"][-1]["regression_mse"]
    st.session_state.setdefault(RESULTS, {})[out] = row


def session_table1() -> None:
    """Table 1 with this session's live rows (one per output dim trained)."""
    results = st.session_state.get(RESULTS, {})
    live = {out: {k: v for k, v in row.items() if k != "baselines"} for out, row in results.items()}
    baselines = {out: row["baselines"] for out, row in results.items()}
    table1(live, baselines, "this session's runs. Run another output dim to fill its row")


def table1(live: dict, baselines: dict, whose: str) -> None:
    st.markdown(
        "**Table 1 of paper 002** (spiral columns, verbatim): test error Σ_outputs (ŷ − y)², "
        "mean over the test side. The paper's numbers depend on its random maps W, b: read "
        "each against the constant and one-affine-map baselines on the same targets. Beside "
        f"them, {whose}."
    )
    st.dataframe(analysis.table1_rows(live, baselines), hide_index=True)


def output_choice(planes: dict) -> int:
    outputs = next(iter(planes.values()))["targets"].shape[1]
    if outputs == 1:
        return 0
    return st.radio(
        "Output drawn",
        range(outputs),
        format_func=lambda d: f"y_{d + 1}",
        horizontal=True,
        key=f"{PREFIX}drawn_output",
    )


def figures(
    planes: dict[str, RegressionPlane],
    target_seed: int,
    curves: object | None,
    table: Callable[[], None],
) -> None:
    """The gates, the predictions, the error `curves` (a live run's figure; a saved run keeps
    no history), the `table`, then each expert against its class's true map."""
    st.subheader("Where each gate sends the plane")
    st.caption(
        "Extension: paper 002 draws no gate map. Left, the expert q(c|x) picks at each point "
        "(argmax); right, how sure it is (entropy: white = sure, dark = undecided). Black "
        "dots: training points."
    )
    presenter.chart(viz.gate_maps(planes), key="gate_maps")
    st.subheader("What the mixture predicts")
    output = output_choice(planes)
    st.caption(
        "Background: ŷ(x) = Σ_k q(c=k|x)(W_k x + b_k) (§4.1). Dots: each point's target, "
        "same colours: a dot that melts into the background is predicted right."
    )
    presenter.chart(viz.prediction_maps(planes, output), key="predictions")
    if curves is not None:
        presenter.chart(curves, key="errors")
    table()
    st.subheader("Each expert against the map that made its class")
    st.caption(
        "Each point: its target against the output of the expert its gate picks. On the "
        "dashed diagonal, that expert has found its class's map W_c x + b_c."
    )
    presenter.chart(viz.expert_parity(planes, output), key="parity")
    for label, plane in planes.items():  # one under the other: side by side they are cut
        st.markdown(f"**{label}**: each expert's map beside the true map of the class it serves")
        fits = analysis.expert_fits(plane, target_seed)
        st.dataframe(viz.expert_fit_table(fits, output), hide_index=True)


def live_figures(jobs: list[Job], views: dict[int, dict], baselines: dict[str, float]) -> None:
    planes = snapshot_parts(jobs, views, analysis.SNAPSHOT_KEY)
    if not planes:
        st.caption("The gates and predictions appear as soon as the training starts.")
        return
    histories = {job.spec.label: views[job.id]["epochs"] for job in jobs}
    lines = {
        "constant": baselines["baseline_constant_mse"],
        "one affine map": baselines["baseline_affine_mse"],
    }
    target_seed = int(jobs[0].spec.overrides["target_seed"])
    figures(planes, target_seed, viz.error_curves(histories, lines), session_table1)


def live_view(was_active: bool) -> None:
    jobs = panel.jobs()
    if not jobs:
        st.info(
            "Press **Start**: DVMoE and DeepMoE train side by side on the same points and "
            "targets, and every figure is redrawn after each epoch."
        )
        session_table1()
        return
    views = panel.views(jobs, was_active)
    baselines = job_baselines(jobs[0])
    for job, column in zip(jobs, st.columns(len(jobs)), strict=True):
        with column:
            job_header(job, views[job.id], baselines)
    remember_results(jobs, views, baselines)
    live_figures(jobs, views, baselines)


@st.cache_resource(max_entries=8, show_spinner="Drawing the gates over the plane…")
def plane_of_run(run_id: str, _choice: CheckpointChoice) -> analysis.RegressionPlane:
    """A saved run's gate and predictions over the plane (cached per run)."""
    checkpoint, data = load_with_data(run_id, _choice)
    return analysis.saved_plane(checkpoint.model, checkpoint.config, data)


def saved_view() -> None:
    """Two gallery or saved runs of the pair, drawn as the live view draws (no error curves:
    a saved run keeps its final scores only). Both must share their targets."""
    empty = (
        "No saved DVMoE or DeepMoE runs yet: train them here and save them from the Train "
        "page, or run `moa train dvmoe --dataset spiral25k` and "
        "`moa train deep_moe --dataset spiral25k`."
    )
    planes, errors, baselines, targets = {}, {}, {}, {}
    for side, run_id, run, column in pick_pair(PREFIX, analysis.MODEL_TYPES, empty):
        name = analysis.MODEL_NAMES[run.model_type]
        try:
            plane = plane_of_run(run_id, choice_for(run))
            config = load_with_data(run_id, choice_for(run))[0].config
            fields, train = config.to_dict(), run.meta.get("train") or {}
            out = int(fields["output_dim"])
            run_baselines = baselines_of(
                str(run.meta.get("dataset")),
                out,
                int(fields["target_seed"]),
                int(train.get("max_samples", 0)),
                int(train.get("seed", 0)),
            )
        except (CheckpointError, DatasetError, ValueError) as err:
            column.error(f"{run_id}: {err}")
            return
        targets[side] = (run.meta.get("dataset"), out, int(fields["target_seed"]))
        planes[f"{side}: {name}"] = plane
        metrics = {**(run.meta.get("metrics") or {}), "usage": run.meta.get("usage") or []}
        if "regression_mse" in metrics:
            errors.setdefault(out, {})[name] = metrics["regression_mse"]
            with column:
                scores(metrics, run_baselines, finished=True)
        baselines[out] = run_baselines
    if len(set(targets.values())) > 1:
        described = "; ".join(
            f"{side}: {d}, output {o}, target seed {t}" for side, (d, o, t) in targets.items()
        )
        st.error(f"Pick two runs with the same data and targets to compare them ({described}).")
        return
    if planes:
        target_seed = next(iter(targets.values()))[2]
        figures(planes, target_seed, None, lambda: table1(errors, baselines, "these two runs"))


st.title("Gated regression")
url_state.start_page()
with st.expander(lesson_title("gated_regression")):
    st.markdown(lesson_text("gated_regression"))
if saved_source_chosen(PREFIX):
    saved_view()
else:
    train_live(
        panel,
        analysis.RegressionSettings,
        link_settings,
        PARAMS,
        settings_panel,
        live_view,
        POLL_SECONDS,
    )
