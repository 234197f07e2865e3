"""What the Train page needs that is not Streamlit: the choices it offers, the job specs it
submits, and a one-line status per job. Kept here so pages stay widgets → calls → figures
and so this logic is testable without a browser.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Self

from moa_core import access
from moa_core.checkpoint import CheckpointError, RunInfo, read_metadata
from moa_core.data import (
    DatasetError,
    dataset_names,
    load_dataset,
    point_set_names,
    user_set_names,
)
from moa_core.models import ConfigError, config_class, model_types
from moa_core.train.jobs import Job, JobSpec
from moa_core.train.setup import (
    TrainConfig,
    parse_assignments,
    split_overrides,
    train_config_from,
)

# Compare mode teaches paper 000's contrast: the vanilla mixture collapses, the minimax one
# stays balanced. The page never names models; it asks for this pair.
COMPARE_PAIR = ("moa", "moa_plus")
ACTIVE_STATUSES = ("queued", "running")
# Session key of the MoE-VAE the Pretraining pipeline page trained; the Experts page shows it.
PIPELINE_RUN = "pipeline_run"
_TRAIN_DEFAULTS = TrainConfig()


def image_datasets() -> list[str]:
    """Dataset names whose samples are images (the toy 2-D point sets are left out), the
    user's own image sets (`folder:NAME`) after the built-in ones."""
    builtin = [name for name in dataset_names() if name not in point_set_names()]
    return [*builtin, *user_set_names("image")]


def point_datasets() -> list[str]:
    """The 2-D point sets: the built-in ones, then the user's own CSV sets (`folder:NAME`)."""
    return [*point_set_names(), *user_set_names("points")]


def accepted_kinds(model_type: str) -> tuple[str, ...]:
    """The data kinds a family trains on: `input_kinds`, else its one `input_kind`."""
    cls = config_class(model_type)
    return getattr(cls, "input_kinds", (getattr(cls, "input_kind", "image"),))


def image_model_types() -> list[str]:
    """Registered model types whose config takes images."""
    return [t for t in model_types() if "image" in accepted_kinds(t)]


def point_model_types() -> list[str]:
    """Registered model types that train on 2-D points (the Cluster distributions page)."""
    return [t for t in model_types() if "points" in accepted_kinds(t)]


FAMILY_KEYS = ("lr", "epochs", "batch_size")  # the Train page's widgets a family may preset


def family_settings(model_type: str) -> dict[str, Any]:
    """The Train page's lr, epochs and batch size for `model_type`: the page's defaults under
    the family's own `train_defaults` (e.g. neural EM: batch 128, lr 1e-3)."""
    page = TrainSettings()
    defaults = config_class(model_type).train_defaults
    return {key: defaults.get(key, getattr(page, key)) for key in FAMILY_KEYS}


def train_lesson(model_type: str) -> str:
    """The Train page's lesson for `model_type`'s family (`assets/lessons/<lesson>.md`), named
    by its config class; MoA's collapse lesson is the page's general one."""
    return getattr(config_class(model_type), "lesson", "train")


DEMO_SECONDS = 75.0  # slowed-down batches of a lesson demo; the training itself adds to it
DELAY_STEP = 0.05  # the Slow down slider's step (seconds per batch)
# What a lesson's "Try this" asks for first, which its demo button sets up and starts.
LESSON_DEMOS: dict[str, dict[str, Any]] = {
    "train": {
        "model_type": "moa",
        "classes": "3,5",
        "num_clusters": 2,
        "compare": True,
        "epochs": 30,
    },
    "train_routing": {"model_type": "multipath_cc", "compare": True, "epochs": 15},
}


def demo_delay(batches: int, seconds: float = DEMO_SECONDS) -> float:
    """Seconds per batch, on the slider's steps, that stretch `batches` to about `seconds`."""
    steps = max(1, round(seconds / max(1, batches) / DELAY_STEP))
    return round(min(1.0, steps * DELAY_STEP), 2)


def lesson_demo(lesson: str) -> dict[str, Any] | None:
    """The Train page's values (`TrainSettings` fields and `delay`) that set up `lesson`'s
    suggestion at a pace a class can watch, or None when the lesson has no demo."""
    demo = LESSON_DEMOS.get(lesson)
    if demo is None:
        return None
    settings = TrainSettings(**{**family_settings(demo["model_type"]), **demo})
    samples = len(load_dataset(settings.spec, "train").x)
    batches = settings.epochs * math.ceil(samples / settings.batch_size)
    return {**dataclasses.asdict(settings), "delay": demo_delay(batches)}


def collapse_fix(model_type: str, comparing: bool) -> str:
    """What to try when `model_type`'s gate collapses. MoA collapses on purpose: that is
    paper 000's lesson, which MoA+ beside it (compare mode) answers."""
    if model_type == COMPARE_PAIR[0]:
        if comparing:
            return (
                "This is expert dominance (paper 000): MoA collapses on purpose; MoA+ beside "
                "it stays balanced."
            )
        return (
            "This is expert dominance, MoA's lesson (paper 000): turn on Compare to train "
            "MoA+ beside it on the same data."
        )
    return "Try: a lower learning rate, another seed, or more epochs."


def switched_off(spec: JobSpec) -> str | None:
    """The ablation label when `spec` is a run with its family's key idea switched off (the
    second run of a side-by-side), else None."""
    return ablation_label(spec.model_type, spec.overrides)


def ablation_label(model_type: str, settings: Mapping[str, Any]) -> str | None:
    """The ablation label ("without normalization") when `settings` (overrides or a saved
    config) switch off the family's key idea, else None."""
    off = ablation(model_type)
    if off and all(settings.get(key) == value for key, value in off[1].items()):
        return off[0]
    return None


def run_collapse_fix(spec: JobSpec, comparing: bool) -> str:
    """`collapse_fix` for one run of a page: a run without its key idea collapses as the
    side-by-side comparison means it to."""
    label = switched_off(spec)
    if label:
        return f"Expected: this run is {spec.model_type} {label}, and its collapse is the point."
    return collapse_fix(spec.model_type, comparing)


def has_clusters(model_type: str) -> bool:
    """Whether the family has a number of experts/clusters M (the classifiers have classes)."""
    return "num_clusters" in {f.name for f in dataclasses.fields(config_class(model_type))}


def compare_pair() -> tuple[str, str] | None:
    """The two model types compare mode trains, or None when one is not registered."""
    return COMPARE_PAIR if set(COMPARE_PAIR) <= set(image_model_types()) else None


def compare_specs(model_type: str, spec: str, overrides: dict[str, Any]) -> list[JobSpec]:
    """What compare mode trains for `model_type`: the compare pair if it belongs to it, else
    the model beside its ablation (e.g. routing without gate regularization); alone if
    it has neither."""
    pair = compare_pair()
    if pair and model_type in pair:
        return [JobSpec(t, spec, overrides, label=t) for t in pair]
    return with_ablation(model_type, spec, overrides)


def with_ablation(model_type: str, spec: str, overrides: dict[str, Any]) -> list[JobSpec]:
    """The model as configured and, when its family has one, its ablation (same data, seed)."""
    specs = [JobSpec(model_type, spec, overrides, label=model_type)]
    switched_off = ablation(model_type)
    if switched_off:
        label, changes = switched_off
        specs.append(
            JobSpec(model_type, spec, {**overrides, **changes}, label=f"{model_type} {label}")
        )
    return specs


def compare_label(model_type: str) -> str:
    """What compare mode puts beside `model_type`, for the page to say."""
    specs = compare_specs(model_type, "", {})
    return " vs ".join(s.label for s in specs) if len(specs) > 1 else ""


def dataset_spec(name: str, classes: str = "") -> str:
    """('digits', '3, 5') → 'digits:3,5'; empty classes → all of them."""
    parts = [part.strip() for part in classes.replace(";", ",").split(",") if part.strip()]
    return f"{name}:{','.join(parts)}" if parts else name


def check_dataset(spec: str) -> str | None:
    """None when `spec` loads, else the one-line reason (missing files, bad class list)."""
    try:
        load_dataset(spec, "train", limit=1)
    except DatasetError as err:
        return str(err)
    return None


class PageSettings:
    """A page's widget values as a dataclass, read back from the session by field name."""

    @classmethod
    def from_mapping(cls, values: dict[str, Any], prefix: str = "") -> Self:
        """Fields read from `values[prefix + name]` (e.g. `st.session_state`); others ignored."""
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{n: values[prefix + n] for n in names if prefix + n in values})

    def as_mapping(self, prefix: str = "") -> dict[str, Any]:
        """The inverse of `from_mapping`: `{prefix + name: value}`, e.g. a session's start."""
        return {prefix + f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass
class TrainSettings(PageSettings):
    """The Train page's widgets, as plain values; defaults are the page's starting values.

    Fewer epochs than `TrainConfig` (10, not 30): a class watches it live.
    """

    dataset: str = "digits"
    classes: str = ""
    model_type: str = "moa_plus"
    num_clusters: int = 0  # 0: one expert per class of the chosen data
    lr: float = _TRAIN_DEFAULTS.lr
    lr_schedule: str = _TRAIN_DEFAULTS.lr_schedule
    epochs: int = 10
    seed: int = 0
    batch_size: int = _TRAIN_DEFAULTS.batch_size
    max_samples: int = 0
    compare: bool = False
    more: str = ""  # any other model or training keys, as in `moa train --set`

    @classmethod
    def of_family(cls, model_type: str) -> Self:
        """The page's defaults for `model_type`: its family's lr, epochs and batch size."""
        return cls(model_type=model_type, **family_settings(model_type))

    @property
    def spec(self) -> str:
        return dataset_spec(self.dataset, self.classes)

    def overrides(self) -> dict[str, Any]:
        """Training and model keys for `JobSpec.overrides` (see `train.setup.TrainConfig`);
        the `more` keys win over the widgets."""
        return {
            "epochs": int(self.epochs),
            "batch_size": int(self.batch_size),
            "lr": float(self.lr),
            "lr_schedule": str(self.lr_schedule),
            "seed": int(self.seed),
            "max_samples": int(self.max_samples),
            **({"num_clusters": int(self.num_clusters)} if self.uses_clusters() else {}),
            **parse_assignments(self.more.split()),
        }

    def problem(self) -> str | None:
        """The one-line reason these settings cannot train (a bad `more` key or value)."""
        try:
            train_over, model_over = split_overrides(self.overrides())
            train_config_from(train_over, config_class(self.model_type).train_defaults)
            config_class(self.model_type).from_dict(model_over)
        except ConfigError as err:
            return str(err)
        return None

    def uses_clusters(self) -> bool:
        """A number of experts was chosen and the model has one (classifiers do not)."""
        return bool(self.num_clusters) and has_clusters(self.model_type)

    def job_specs(self) -> list[JobSpec]:
        """One spec, or in compare mode two on the same data and seed: the compare pair when
        the model is one of it, else the model and its ablation."""
        if self.compare:
            return compare_specs(self.model_type, self.spec, self.overrides())
        return [JobSpec(self.model_type, self.spec, self.overrides(), label=self.model_type)]


@dataclass
class JobStatus:
    """What the page prints about one job: how loud (st.info/success/warning/error) and what."""

    level: str
    text: str
    epochs_done: int
    epochs_total: int

    @property
    def progress(self) -> float:
        return min(1.0, self.epochs_done / self.epochs_total) if self.epochs_total else 0.0


def is_active(job: Job) -> bool:
    return job.status in ACTIVE_STATUSES


BROWSERS_PER_POLL = 4  # pages up to this many browsers redraw at their own pace


def poll_interval(base: float, browsers: int) -> float:
    """A live page's redraw interval with `browsers` sharing the server: every redraw of
    every page competes with the trainings for the server's time, so more browsers redraw
    less often (30 students: every ~8 s instead of every second)."""
    return base * max(1.0, browsers / BROWSERS_PER_POLL)


def wait_text(seconds: float | None) -> str:
    """A queue wait as a person says it; the estimate is rough, so is the wording."""
    if seconds is None:
        return "wait not known yet"
    if seconds < 10:
        return "starting in a few seconds"
    if seconds < 90:
        return f"about {round(seconds / 10) * 10:.0f} s"
    return f"about {round(seconds / 60):.0f} min"


def owner_name(owner: str) -> str:
    """Who started a job, as the teacher's view names them."""
    return access.short_name(owner) if owner else "the server"


def job_status(job: Job, view: dict[str, Any], queue_place: str | None) -> JobStatus:
    """One line per job: its place in the queue ("number 2 of 5 in the queue, about 40 s"),
    epoch counter, or how it ended and why."""
    total = int(job.spec.overrides.get("epochs", 0))
    done = len(view["epochs"])
    step = view["losses"][-1][0] if view["losses"] else 0
    status, message = view["status"], view["message"]
    counter = f"epoch {done}/{total} done, step {step}"
    if status == "queued":
        return JobStatus("info", f"waiting: {queue_place or 'starting'}", done, total)
    if status == "running":
        state = "paused" if job.control.paused else "running"
        return JobStatus("info", f"{state} — {counter}", done, total)
    if status == "finished":
        run = job.state.run
        seconds = f" in {run.result.seconds:.1f} s" if run is not None else ""
        return JobStatus("success", f"finished — {done} epochs{seconds}", done, total)
    level = "error" if status == "failed" else "warning"
    return JobStatus(level, f"{status} — {message or counter}", done, total)


def final_metrics(job: Job) -> dict[str, Any] | None:
    """Scores over the whole training set once a job has ended with at least one epoch."""
    run = job.state.run
    if not job.done or run is None or not run.result.epochs_done:
        return None
    return run.result.metrics


def score_tiles(metrics: dict[str, Any], split: str = "held-out") -> list[tuple[str, str]]:
    """(label, value) for the headline scores both pages show side by side; a classifier's
    accuracy is labelled with the `split` it was measured on."""
    if "accuracy" in metrics:
        dead = metrics["dead_gate_fraction"]
        return [
            (f"Accuracy ({split})", f"{metrics['accuracy']:.3f}"),
            ("Dead gates", "no gates" if dead is None else f"{dead:.0%}"),
            ("Classes predicted", str(metrics["classes_predicted"])),
        ]
    tiles = [
        ("ACC", f"{metrics['acc']:.3f}"),
        ("NMI", f"{metrics['nmi']:.3f}"),
        ("ARI", f"{metrics['ari']:.3f}"),
        ("Clusters used", f"{metrics['clusters_used']}/{len(metrics['usage'])}"),
    ]
    if "regression_mse" in metrics:  # a regressor (paper 002): its error on the test side
        tiles.append(("Test error", f"{metrics['regression_mse']:.3g}"))
    return tiles


def progress_metrics(history: list[dict[str, Any]]) -> tuple[str, ...]:
    """The per-epoch scores to plot (rows of a job view): accuracy and dead gates for
    classifiers, else NMI and ACC."""
    if history and "accuracy" in history[-1]:
        return ("accuracy", "dead_gate_fraction")
    return ("nmi", "acc")


def ablation(model_type: str) -> tuple[str, dict[str, Any]] | None:
    """(label, overrides) that switch off a family's key idea, or None when it has none."""
    return getattr(config_class(model_type), "ablation", None)


def ablation_partner(
    config: Mapping[str, Any], dataset: str, runs: Iterable[RunInfo]
) -> RunInfo | None:
    """The first of `runs` that is the run of `config` (a saved config, as JSON holds it) on
    `dataset` with its family's key idea the other way: the same model settings but for the
    ablation's keys (neural EM: `normalize`, paper 004, Fig. 5). The Cluster distributions
    page draws the two side by side, as it does two runs trained live."""
    model_type = str(config.get("model_type"))
    off = ablation(model_type)
    if off is None:
        return None

    def shared(settings: Mapping[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in settings.items() if key not in off[1]}

    ablated = ablation_label(model_type, config) is not None
    for run in runs:
        if run.model_type != model_type or run.meta.get("dataset") != dataset:
            continue
        try:
            other, _ = read_metadata(run.path)
        except (CheckpointError, OSError):  # gone or broken since it was listed
            continue
        if (
            shared(other) == shared(config)
            and (ablation_label(model_type, other) is None) == ablated
        ):
            return run
    return None


@dataclass
class PlaneSettings(PageSettings):
    """The Cluster distributions page's widgets. Paper 004, Sec. 8.1: batch 128, Adam 1e-3.

    Opens on the blobs: drawn at once (the bottleneck sets are built on demand), and four
    compact groups show the collapse as plainly as the paper's MNIST plane.
    """

    dataset: str = "blobs"
    model_type: str = "neural_em"
    num_clusters: int = 0  # 0: one cluster per class
    epochs: int = 30
    lr: float = 1e-3
    seed: int = 0
    side_by_side: bool = True

    def job_specs(self) -> list[JobSpec]:
        """The model as configured and, side by side, its ablation (same data and seed)."""
        overrides: dict[str, Any] = {
            "epochs": int(self.epochs),
            "lr": float(self.lr),
            "seed": int(self.seed),
            **({"num_clusters": int(self.num_clusters)} if self.num_clusters else {}),
        }
        specs = with_ablation(self.model_type, self.dataset, overrides)
        return specs if self.side_by_side else specs[:1]
