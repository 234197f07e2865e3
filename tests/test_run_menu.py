"""The runs a picker offers (`moa_core.run_menu`): the gallery first and read under
`gallery/<name>`, then saved runs; runs a page cannot draw left out and counted; the page's
default run, or the first one while the gallery is missing or partial; the run a comparison
opens on."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tiny import TINY

from moa_core.checkpoint import RunInfo, list_runs, read_metadata, save_checkpoint, save_run
from moa_core.run_menu import counterparts, describe, run_kind, run_menu
from moa_core.train.run import train_model


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A gallery with an image run and a 2-D run, and a run folder with one saved image run
    and a file that is not a run."""
    image = train_model("moa_plus", "digits", TINY)
    points = train_model("neural_em", "blobs", {"epochs": 1, "max_samples": 200, "device": "cpu"})
    gallery, saved = tmp_path_factory.mktemp("gallery"), tmp_path_factory.mktemp("saved")
    for name, run in (("moa_plus_digits", image), ("neural_em_2d_plain", points)):
        path = gallery / f"{name}.safetensors"
        save_checkpoint(path, run.model, run.config, run.checkpoint_meta())
    save_run(image.model, image.config, image.checkpoint_meta(), saved)
    (saved / "notes.txt").write_text("not a run")
    return {"gallery": gallery, "saved": saved}


def test_the_gallery_comes_first_under_its_own_ids(folders) -> None:
    menu = run_menu(saved_dir=folders["saved"], gallery_dir=folders["gallery"])
    ids = list(menu.runs)
    assert ids[:2] == ["gallery/moa_plus_digits", "gallery/neural_em_2d_plain"]
    assert len(ids) == 3 and ids[2].startswith("moa_plus-digits-")
    assert menu.other_kind == 0
    assert menu.skipped == ["skipped: notes.txt is not a .safetensors run"]


@pytest.mark.parametrize(
    ("kind", "shown"),
    [("image", ["gallery/moa_plus_digits", "saved"]), ("points", ["gallery/neural_em_2d_plain"])],
)
def test_a_page_lists_only_runs_of_the_kind_it_draws(folders, kind, shown) -> None:
    menu = run_menu(kind, saved_dir=folders["saved"], gallery_dir=folders["gallery"])
    ids = ["saved" if not r.startswith("gallery/") else r for r in menu.runs]
    assert ids == shown
    assert menu.other_kind == 3 - len(shown)
    assert {run_kind(run) for run in menu.runs.values()} == {kind}


def test_the_page_opens_on_its_gallery_run_or_else_the_first(folders, tmp_path: Path) -> None:
    menu = run_menu("image", saved_dir=folders["saved"], gallery_dir=folders["gallery"])
    assert menu.opening("gallery/moa_plus_digits") == "gallery/moa_plus_digits"
    # A gallery still being built lacks the page's run: the first listed one opens instead.
    assert menu.opening("gallery/multipath_cc_reg") == "gallery/moa_plus_digits"
    assert menu.opening(None) == "gallery/moa_plus_digits"
    without = run_menu("image", saved_dir=folders["saved"], gallery_dir=tmp_path / "missing")
    assert list(without.runs) == [without.opening("gallery/moa_plus_digits")]
    assert run_menu(saved_dir=tmp_path, gallery_dir=tmp_path).opening("x") is None


def test_labels_say_gallery_model_dataset_and_score(folders) -> None:
    menu = run_menu(saved_dir=folders["saved"], gallery_dir=folders["gallery"])
    gallery_run, points_run, saved_run = menu.runs.values()
    nmi = gallery_run.meta["metrics"]["nmi"]
    assert describe(gallery_run) == f"Gallery · moa_plus_digits (moa_plus, digits, NMI {nmi:.2f})"
    assert describe(points_run).startswith("Gallery · neural_em_2d_plain (neural_em, blobs")
    assert describe(saved_run).startswith(f"{saved_run.run_id} (moa_plus, digits, NMI ")


def gate_reg(run: RunInfo) -> float:
    return read_metadata(run.path)[0]["gate_reg"]


def test_a_run_is_compared_with_its_own_pair_first(routing_run_dir: Path, tmp_path: Path) -> None:
    """Two saved multipath runs (gate_reg 0.01 and 0) and gallery copies of both: a run's
    counterpart from the same place (saved or gallery) comes first, the other gate_reg first."""
    saved = {gate_reg(run): run.run_id for run in list_runs(routing_run_dir)}
    for reg, name in ((0.01, "multipath_cc_reg"), (0.0, "multipath_cc_noreg")):
        shutil.copy(routing_run_dir / f"{saved[reg]}.safetensors", tmp_path / f"{name}.safetensors")
    menu = run_menu("image", saved_dir=routing_run_dir, gallery_dir=tmp_path)

    def order(run_id: str) -> list[str]:
        reg = gate_reg(menu.runs[run_id])
        return [
            r.run_id for r in counterparts(menu, run_id, "multipath_cc", "digits", "gate_reg", reg)
        ]

    gallery_pair = ["gallery/multipath_cc_noreg", "gallery/multipath_cc_reg"]
    assert order(saved[0.01]) == [saved[0.0], *gallery_pair]
    assert order("gallery/multipath_cc_reg") == [
        "gallery/multipath_cc_noreg",
        saved[0.0],
        saved[0.01],
    ]
    assert counterparts(menu, saved[0.0], "moa_plus", "digits", "gate_reg", 0.0) == []
