"""Pretraining pipeline: paper 001's automatic set-up of a MoE-VAE, one step at a time, each
decision drawn; or the recorded decisions of a saved MoE-VAE run."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st
import torch

from app_pages import presenter, session, url_state
from app_pages.checkpoint_picker import RUN_PARAM, pick_checkpoint
from app_pages.job_panel import (
    job_progress,
    poll_seconds,
    show_dataset_problem,
    show_start_problem,
    submit,
)
from moa_core import ui_state
from moa_core.analysis.cluster_finder import SELECTIONS, umap_neighbors
from moa_core.analysis.health import collapse_message
from moa_core.analysis.latent_size import CLUSTERING, RECONSTRUCTION
from moa_core.checkpoint import CheckpointError, save_run
from moa_core.gallery import gallery_id
from moa_core.lessons import lesson_text, lesson_title
from moa_core.train import pretraining as steps
from moa_core.train.jobs import Job, JobSpec, Work, job_manager
from moa_core.train.pipeline_record import PipelineRecord, RecordError
from moa_core.train.pretraining import PipelineRun, PretrainSettings
from moa_core.viz.pretraining import (
    cluster_figure,
    cluster_names,
    confusion_figure,
    explained_variance_figure,
    paper_tables,
)

PREFIX = "pre_"
RESULTS = f"{PREFIX}results"  # step name → (key, result), kept while its settings hold
SUBMITTED = f"{PREFIX}submitted"  # ids of the jobs this session submitted
STEP_ORDER = ("size", "clusters", "manager", "mixture")
POLL_SECONDS = 1.0
RUN_HERE, SAVED = "Run it here", "A saved run"
DEFAULT_RUN = gallery_id("moe_vae_digits")  # the gallery's MoE-VAE, with its pipeline record
MANAGER_FIX = (
    "A MoE-VAE trained from this manager starts with its other experts idle. Try: more "
    "manager epochs, or more VAE epochs so HDBSCAN's clusters are whole classes."
)


def widgets() -> tuple[str, PretrainSettings, dict[str, Any]]:
    """The dataset, the pretraining settings and the final training's settings."""
    d = PretrainSettings()
    datasets = ui_state.image_datasets()
    with presenter.settings_box(), st.container(border=True):
        c = st.columns(4)
        spec = c[0].selectbox("Dataset", datasets, datasets.index("digits"), key=f"{PREFIX}data")
        samples = c[1].number_input(
            "Samples (0: all)", 0, 100_000, 0, step=500, key=f"{PREFIX}samples"
        )
        seed = c[2].number_input("Seed", 0, 1_000_000, 0, key=f"{PREFIX}seed")
        filters = c[3].number_input("Filters of block 1", 1, 64, d.base_filters, key=f"{PREFIX}bf")
        c = st.columns(4)
        start = c[0].number_input("Large latent", 2, 256, d.start_latent, key=f"{PREFIX}start")
        vae_epochs = c[1].number_input("VAE epochs", 1, 1000, d.vae_epochs, key=f"{PREFIX}vae_ep")
        threshold = c[2].radio(
            "Explained variance to keep",
            (CLUSTERING, RECONSTRUCTION),
            format_func=lambda t: f"{t:.0%} ({'clustering' if t < 0.95 else 'reconstruction'})",
            key=f"{PREFIX}threshold",
        )
        mcs = c[3].number_input(
            "HDBSCAN min cluster size (0: 2 % of N)",
            0,
            5000,
            d.min_cluster_size,
            key=f"{PREFIX}mcs",
            help="The paper keeps HDBSCAN's default of 5. After a short VAE training that "
            "leaves hundreds of specks; 2 % of the samples keeps whole classes.",
        )
        c = st.columns(5)
        selection = c[4].radio(
            "HDBSCAN selection",
            SELECTIONS,
            key=f"{PREFIX}selection",
            help="leaf: the finest dense clusters; eom (the paper's default): the most stable, "
            "which merges touching classes when the VAE has trained only briefly.",
        )
        neighbors = c[0].number_input(
            "UMAP neighbours (0: Eq. 10)",
            0,
            1000,
            d.n_neighbors,
            key=f"{PREFIX}nn",
            help="0 uses max(N / 300, 100) (paper 001, Eq. 10).",
        )
        manager_epochs = c[1].number_input(
            "Manager epochs", 1, 1000, d.manager_epochs, key=f"{PREFIX}man_ep"
        )
        final_epochs = c[2].number_input("MoE-VAE epochs", 1, 1000, 10, key=f"{PREFIX}final_ep")
        alpha = c[3].number_input("α (sample entropy)", 0.0, 1000.0, 100.0, key=f"{PREFIX}alpha")
    settings = PretrainSettings(
        start_latent=int(start),
        threshold=float(threshold),
        vae_epochs=int(vae_epochs),
        manager_epochs=int(manager_epochs),
        base_filters=int(filters),
        n_neighbors=int(neighbors),
        min_cluster_size=int(mcs),
        cluster_selection=str(selection),
        max_samples=int(samples),
        seed=int(seed),
    )
    return spec, settings, {"epochs": int(final_epochs), "alpha": float(alpha)}


def cached(step: str, key: tuple) -> Any | None:
    held = st.session_state.setdefault(RESULTS, {}).get(step)
    return held[1] if held and held[0] == key else None


def keep(step: str, key: tuple, result: Any) -> None:
    """Store a step's result and forget every later step's: they were built on the old one."""
    results = st.session_state.setdefault(RESULTS, {})
    results[step] = (key, result)
    for later in STEP_ORDER[STEP_ORDER.index(step) + 1 :]:
        results.pop(later, None)


@st.fragment(run_every=poll_seconds(POLL_SECONDS))
def watch(job: Job, label: str, epochs: int) -> None:
    """The running step's progress and a Stop button; a full rerun once it is done."""
    if job.done:
        st.rerun()
    done = len(job.state.view()["epochs"])
    running = f"epoch {done + 1} of {epochs}" if done < epochs else "finishing"
    job_progress(job, label, done / epochs, running)


def step_job(step: str) -> Job | None:
    """This browser's newest job for `step`: a reloaded page finds it again."""
    owned = job_manager().owned(session.browser_id(), f"{PREFIX}{step}")
    return owned[-1] if owned else None


def run_step(step: str, key: tuple, label: str, epochs: int, work: Work) -> Any | None:
    """The step's result for these settings, if there is one; else a button that submits the
    work as a job (trained in a worker thread) and a progress bar while it runs. The job
    carries its settings (`context`), so a job for settings left behind is stopped."""
    result = cached(step, key)
    job = step_job(step)
    mine = st.session_state.setdefault(SUBMITTED, set())
    if job is not None and job.context != key and not job.done:
        if job.id in mine:
            job_manager().cancel(job, by=session.browser_id())  # the settings changed under it
        else:  # started before a reload, whose widgets came back at their defaults
            st.caption("Still running with the settings it was started with, before a reload:")
            watch(job, label, epochs)
            return None
    elif job is not None and job.context == key and not job.done:
        watch(job, label, epochs)
        return None
    elif job is not None and job.context == key and result is None:
        if job.status == "finished":
            keep(step, key, job.state.result)
            result = job.state.result
        else:
            st.error(f"{label}: {job.state.message or job.status}")
    primary = "primary" if result is None else "secondary"
    if st.button(label, key=f"{PREFIX}run_{step}", type=primary):
        submitted = submit([JobSpec(label=label, work=work)], f"{PREFIX}{step}", context=key)
        mine.update(job.id for job in submitted)
        if submitted:
            st.rerun()
    show_start_problem()
    return result


def show_size(size: steps.SizeFinding) -> None:
    presenter.chart(
        explained_variance_figure(size.latent.cumulative, size.latent.size), key=f"{PREFIX}ev"
    )
    st.markdown(
        f"The first **{size.latent.size}** principal components of the "
        f"{size.codes.shape[1]}-dimensional codes explain "
        f"{size.latent.threshold:.0%} of their variance: the VAE is retrained with a "
        f"**{size.latent.size}**-dimensional latent ({size.seconds:.0f} s)."
    )


def show_clusters(size: steps.SizeFinding, search: steps.ClusterSearch) -> None:
    scores = search.summary.scores
    presenter.chart(
        cluster_figure(np.asarray(search.summary.points), search.clusters.k),
        key=f"{PREFIX}umap",
    )
    c = st.columns(4)
    c[0].metric("K found", scores["k_found"], help=f"{size.dataset.num_classes} true classes")
    c[1].metric("Labelled (not noise)", f"{scores['labeled_fraction']:.0%}")
    c[2].metric("ACC on the labelled", f"{scores['acc_labeled']:.3f}")
    c[3].metric("GMM ACC, same K", f"{scores['gmm_acc']:.3f}")


def show_record(record: PipelineRecord, final_acc: float | None) -> None:
    """The manager's agreement and Tables II–IV (for a fresh run and a saved one alike)."""
    k = record.k_found
    c1, c2 = st.columns(2)
    presenter.chart(
        confusion_figure(
            record.confusion_clusters,
            cluster_names(k),
            cluster_names(k),
            f"Manager vs HDBSCAN labels (agreement {record.manager_agreement:.3f})",
        ),
        c1,
        key=f"{PREFIX}conf_hdb",
    )
    presenter.chart(
        confusion_figure(
            record.confusion_classes,
            record.class_names,
            cluster_names(k),
            f"Manager vs true classes (ACC {record.manager_acc:.3f})",
        ),
        c2,
        key=f"{PREFIX}conf_true",
    )
    collapsed = collapse_message(
        np.asarray(record.confusion_clusters).sum(axis=0), unit="cluster", fix=MANAGER_FIX
    )
    if collapsed:
        st.warning(f"The manager: {collapsed}")
    st.markdown(
        "Latent size per expert (the finder on each cluster's codes): "
        + ", ".join(f"cluster {c + 1}: **{s}**" for c, s in enumerate(record.latent_sizes))
    )
    for title, rows in paper_tables(record, final_acc).items():
        st.markdown(f"**{title}**")
        st.dataframe(rows, hide_index=True)


def run_here() -> None:
    spec, settings, final = widgets()
    if show_dataset_problem(spec):
        st.stop()
    st.subheader("1 · Latent size")
    st.caption(
        f"Train a VAE with {settings.start_latent} latent dimensions, then find how many "
        "principal components of its codes carry the variance (paper 001, Fig. 4)."
    )
    size = run_step(
        "size",
        steps.step_key(spec, settings, "size"),
        "Train the large VAE and find the size",
        settings.vae_epochs,
        lambda on_event, control: steps.find_size(spec, settings, [on_event], control),
    )
    if size is None:
        return
    show_size(size)

    st.subheader("2 · Number of clusters")
    n = umap_neighbors(len(size.dataset))
    st.caption(
        f"Retrain at {size.latent.size} dimensions, UMAP the codes "
        f"({settings.n_neighbors or n} neighbours), let HDBSCAN decide K and the noise."
    )
    reuse = retrained_for(steps.step_key(spec, settings, "size"))
    search = run_step(
        "clusters",
        steps.step_key(spec, settings, "clusters"),
        "Cluster the retrained VAE's codes" if reuse else "Retrain the VAE and cluster",
        1 if reuse else settings.vae_epochs,
        lambda on_event, control: steps.search_clusters(
            spec, size, settings, [on_event], control, reuse
        ),
    )
    if search is None:
        return
    show_clusters(size, search)

    st.subheader("3 · Manager pretraining")
    st.caption(
        "Train the manager on the labelled samples only, with KL to HDBSCAN's soft labels; "
        "find each cluster's own latent size."
    )
    manager = run_step(
        "manager",
        steps.step_key(spec, settings, "manager"),
        "Pretrain the manager",
        settings.manager_epochs,
        lambda on_event, control: steps.pretrain_manager(
            size, search, settings, [on_event], control
        ),
    )
    if manager is None:
        return
    record = manager.record

    st.subheader("4 · The MoE-VAE")
    st.caption(
        f"{record.k_found} VAE experts and the pretrained manager, trained on L = R + αS + βB "
        "at lr 1e-4 (paper 001, Sec. IV.D)."
    )
    mixture_key = (steps.step_key(spec, settings, "manager"), tuple(sorted(final.items())))
    mixture = run_step(
        "mixture",
        mixture_key,
        "Train the MoE-VAE",
        final["epochs"],
        lambda on_event, control: steps.train_mixture(
            spec, manager, settings, final, [on_event], control
        ),
    )
    final_acc = mixture.run.result.metrics.get("acc") if mixture else None
    if mixture is not None:
        st.session_state[ui_state.PIPELINE_RUN] = mixture
        metrics = mixture.run.result.metrics
        c = st.columns(4)
        for column, name in zip(c, ("acc", "nmi", "ari"), strict=False):
            column.metric(f"final {name.upper()}", f"{metrics[name]:.3f}")
        if not session.can_save_runs():
            c[3].caption(session.READ_ONLY_NOTE)
        elif c[3].button("Save as run", key=f"{PREFIX}save"):
            save(mixture)
    show_record(mixture.record if mixture else record, final_acc)


def retrained_for(size_key: tuple) -> steps.ClusterSearch | None:
    """The last search, when its VAE was retrained under the same size-step settings: only the
    UMAP or HDBSCAN settings changed, so its codes are clustered again without retraining."""
    held = st.session_state.setdefault(RESULTS, {}).get("clusters")
    return held[1] if held and held[0][: len(size_key)] == size_key else None


def save(mixture: PipelineRun) -> None:
    try:
        path = save_run(mixture.run.model, mixture.run.config, mixture.checkpoint_meta())
    except (OSError, CheckpointError) as err:
        st.error(f"Could not save the run: {err}")
        return
    st.success(f"Saved as `{path.stem}`: open it on the Experts & latent walks page.")


def saved_run() -> None:
    hint = "run the pipeline here and press **Save as run**"
    choice = pick_checkpoint(PREFIX, hint, DEFAULT_RUN, kind="image")
    try:
        checkpoint = choice.load(torch.device("cpu"))  # the record needs no data, no GPU
        raw = checkpoint.meta.get("pretraining")
        if raw is None:
            st.info(
                f"This {checkpoint.config.model_type} run was trained without the pretraining "
                "pipeline: there are no decisions to show."
            )
            return
        record = PipelineRecord.from_dict(raw)
    except (CheckpointError, RecordError) as err:
        st.error(str(err))
        return
    presenter.chart(
        explained_variance_figure(record.explained, record.latent_size), key=f"{PREFIX}ev"
    )
    presenter.chart(cluster_figure(np.asarray(record.points), record.k_found), key=f"{PREFIX}umap")
    show_record(record, checkpoint.meta.get("metrics", {}).get("acc"))


st.title("Pretraining pipeline")
url_state.start_page()
with st.expander(lesson_title("pretraining")):
    st.markdown(lesson_text("pretraining"))
# A link naming a run (a lesson card's) opens that run's recorded decisions.
st.session_state.setdefault(f"{PREFIX}mode", SAVED if RUN_PARAM in st.query_params else RUN_HERE)
source = st.radio("Source", (RUN_HERE, SAVED), horizontal=True, key=f"{PREFIX}mode")
if source == RUN_HERE:
    url_state.forget(RUN_PARAM)
    run_here()
else:
    saved_run()
