"""The runs a page's picker offers: the bundled gallery first, then the user's saved runs
(newest first), only those whose data the page can draw, and the one it opens on.

No Streamlit here, so the listing rules are tested without a browser; the picker widget is
`app_pages/checkpoint_picker.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from moa_core import gallery
from moa_core.checkpoint import CheckpointError, RunInfo, read_metadata, scan_runs
from moa_core.models import ConfigError, config_class

GALLERY_LABEL = "Gallery"


@dataclass(frozen=True)
class RunMenu:
    runs: dict[str, RunInfo]  # run id → run: gallery first, then saved runs, newest first
    skipped: list[str]  # one line per entry of the run folder that is not a readable run
    other_kind: int  # readable runs left out: their data are not what the page draws

    def opening(self, wanted: str | None) -> str | None:
        """The run a page opens on: `wanted` when it is listed, else the first one (None for
        an empty menu), so a gallery still being built never leaves a page without a run."""
        if wanted in self.runs:
            return wanted
        return next(iter(self.runs), None)


def run_kind(run: RunInfo) -> str | None:
    """'image' or 'points': what the run's model takes (None when its header cannot say; the
    loader then gives the reason in one line)."""
    try:
        config, _ = read_metadata(run.path)
        family = config_class(run.model_type)
    except (CheckpointError, ConfigError, OSError):
        return None
    return config.get("input_kind") or getattr(family, "input_kind", "image")


def run_menu(
    kind: str | None = None,
    saved_dir: Path | None = None,
    gallery_dir: Path = gallery.GALLERY_DIR,
) -> RunMenu:
    """Gallery and saved runs in one menu; with `kind`, only runs whose data are of it."""
    listing = scan_runs(saved_dir)
    every = [*gallery.gallery_runs(gallery_dir), *listing.runs]
    shown = [run for run in every if kind is None or run_kind(run) in (kind, None)]
    return RunMenu({run.run_id: run for run in shown}, listing.skipped, len(every) - len(shown))


def counterparts(
    menu: RunMenu, run_id: str, model_type: str, dataset: str, setting: str, value: object
) -> list[RunInfo]:
    """Runs to compare run `run_id` with: the same model type and dataset, itself left out;
    first those from the same place (gallery or saved: a student's own pair before the
    gallery's), then those whose `setting` (e.g. "gate_reg") differs from `value`."""
    alike = [
        run
        for run in menu.runs.values()
        if run.model_type == model_type
        and run.meta.get("dataset") == dataset
        and run.run_id != run_id
    ]
    here = gallery.is_gallery(run_id)
    return sorted(
        alike,
        key=lambda run: (gallery.is_gallery(run.run_id) != here, _setting(run, setting) == value),
    )


def _setting(run: RunInfo, name: str) -> object:
    try:
        return read_metadata(run.path)[0].get(name)
    except (CheckpointError, OSError):
        return None


def describe(run: RunInfo) -> str:
    """'Gallery · moa_digits (moa, digits, NMI 0.52)' or a saved run's id with the same."""
    metrics = run.meta.get("metrics") or {}
    nmi, accuracy = metrics.get("nmi"), metrics.get("accuracy")
    score = f", NMI {nmi:.2f}" if isinstance(nmi, float) else ""
    score += f", accuracy {accuracy:.3f}" if isinstance(accuracy, float) else ""
    name = run.run_id
    if gallery.is_gallery(name):
        name = f"{GALLERY_LABEL} · {name.removeprefix(gallery.PREFIX)}"
    return f"{name} ({run.model_type}, {run.meta.get('dataset', '?')}{score})"
