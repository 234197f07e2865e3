"""The bundled gallery (`make gallery`): every recipe's checkpoint loads through the normal
loader, is listed as `gallery/<name>` and has its thumbnail; `moa eval` reproduces the scores
its metadata records; each run shows its lesson; a rebuild is seeded; all of it fits 15 MB."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from moa_core.checkpoint import load_checkpoint
from moa_core.cli import RESULT_KEYS
from moa_core.cli import main as moa
from moa_core.gallery import (
    GALLERY_DIR,
    RECIPES,
    gallery_id,
    gallery_runs,
    is_gallery,
    recipe,
    thumbnail_path,
)
from moa_core.gallery_build import MADE_BY, THUMBNAILS, build
from moa_core.gallery_build import main as build_main
from moa_core.viz import thumbnails

NAMES = [r.name for r in RECIPES]
MAX_BYTES = 15 * 2**20


def checkpoint(name: str) -> Path:
    return GALLERY_DIR / f"{name}.safetensors"


def meta(name: str) -> dict:
    return load_checkpoint(checkpoint(name)).meta


def test_the_gallery_holds_the_contracts_runs() -> None:
    assert set(NAMES) == {
        "moa_digits",
        "moa_plus_digits",
        "neural_em_digits",
        "neural_em_2d_normalized",
        "neural_em_2d_plain",
        "multipath_cc_reg",
        "multipath_cc_noreg",
        "moe_vae_digits",
        "vade_digits",
        "dmvae_digits",
        "dvmoe_spiral",
        "deep_moe_spiral",
    }
    assert len(NAMES) == len(set(NAMES))
    assert all(r.thumbnail in THUMBNAILS for r in RECIPES)


def test_every_recipe_has_its_file_and_thumbnail_and_all_fit_15_mb() -> None:
    files = [checkpoint(name) for name in NAMES] + [thumbnail_path(name) for name in NAMES]
    missing = [str(path) for path in files if not path.is_file()]
    assert not missing, f"run `make gallery`: missing {missing}"
    assert sum(path.stat().st_size for path in files) <= MAX_BYTES
    for name in NAMES:
        with Image.open(thumbnail_path(name)) as picture:
            assert picture.size == (thumbnails.WIDTH, thumbnails.HEIGHT)
        assert thumbnail_path(name).stat().st_size < 32_000


def test_gallery_runs_lists_every_bundled_file_under_its_gallery_id() -> None:
    runs = gallery_runs()
    assert [run.run_id for run in runs] == sorted(gallery_id(name) for name in NAMES)
    assert all(is_gallery(run.run_id) and run.path.parent == GALLERY_DIR for run in runs)
    assert {run.run_id: run.model_type for run in runs} == {
        gallery_id(r.name): r.model for r in RECIPES
    }


def _moa(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = moa(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("name", NAMES)
def test_moa_eval_reproduces_the_recorded_scores(name: str) -> None:
    loaded = load_checkpoint(checkpoint(name))  # the normal loader: validated, or it raises
    gallery = loaded.meta["gallery"]
    assert gallery["name"] == name and gallery["made_by"] == MADE_BY
    assert gallery["recipe"] == recipe(name).to_dict()
    assert loaded.config.model_type == gallery["recipe"]["model"]
    split = ["--split", "test"] if gallery["split"] == "test" else []
    code, out, err = _moa(["eval", str(checkpoint(name)), "--device", "cpu", *split])
    assert (code, err) == (0, ""), err
    line = json.loads(out)
    recorded = {k: v for k, v in loaded.meta["metrics"].items() if k in RESULT_KEYS}
    assert recorded and recorded.keys() == line.keys() & set(RESULT_KEYS)
    assert {k: line[k] for k in recorded} == {
        k: round(v, 4) if isinstance(v, float) else v for k, v in recorded.items()
    }


def test_each_run_shows_its_lesson() -> None:
    """The contrasts the lessons point at, in the recorded scores."""
    collapsed, cured = meta("moa_digits"), meta("moa_plus_digits")
    assert max(collapsed["usage"]) > 0.9 and collapsed["metrics"]["nmi"] < 0.1
    assert cured["metrics"]["clusters_used"] == 10 and max(cured["usage"]) < 0.2
    assert cured["metrics"]["nmi"] > 0.6
    normalized, plain = meta("neural_em_2d_normalized"), meta("neural_em_2d_plain")
    assert normalized["metrics"]["nmi"] > 0.9 and plain["metrics"]["clusters_used"] == 1
    assert meta("neural_em_digits")["metrics"]["nmi"] > 0.6
    regularized, unregularized = meta("multipath_cc_reg"), meta("multipath_cc_noreg")
    assert regularized["metrics"]["dead_gate_fraction"] == 0.0
    assert unregularized["metrics"]["dead_gate_fraction"] > 0.1
    assert min(regularized["metrics"]["accuracy"], unregularized["metrics"]["accuracy"]) > 0.95
    pipeline = meta("moe_vae_digits")
    assert pipeline["pretraining"]["k_found"] >= 8  # found by the pipeline, not told
    assert pipeline["metrics"]["nmi"] > 0.5
    dvmoe, deep_moe = meta("dvmoe_spiral")["metrics"], meta("deep_moe_spiral")["metrics"]
    assert dvmoe["regression_mse"] < 0.05 * dvmoe["baseline_constant_mse"]  # issue 14's target
    assert dvmoe["regression_mse"] < deep_moe["regression_mse"] and dvmoe["acc"] > deep_moe["acc"]


def test_rebuilding_a_recipe_gives_the_same_tensors(tmp_path: Path) -> None:
    """Seeded: two builds of the cheapest recipe write identical weights, scores and pictures."""
    cheapest = recipe("neural_em_2d_plain")
    first, second = build(cheapest, tmp_path / "a"), build(cheapest, tmp_path / "b")
    drop = ("seconds", "bytes", "checkpoint", "thumbnail")  # the meta records its seconds
    assert {k: v for k, v in first.items() if k not in drop} == {
        k: v for k, v in second.items() if k not in drop
    }
    a, b = load_file(first["checkpoint"]), load_file(second["checkpoint"])
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert Path(first["thumbnail"]).read_bytes() == Path(second["thumbnail"]).read_bytes()
    assert load_checkpoint(first["checkpoint"]).meta["gallery"]["recipe"] == cheapest.to_dict()


def test_build_refuses_an_unknown_recipe_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_main(["--only", "no_such_run"])
    assert exit_info.value.code == 2
    assert "no_such_run" in capsys.readouterr().err


def test_image_rows_draws_a_collapsed_mixture_as_one_full_row() -> None:
    images = np.ones((20, 1, 16, 16), np.float32)  # white digits
    empty = np.zeros((0, 1, 16, 16), np.float32)
    picture = thumbnails.image_rows([images, empty, empty], [1.0, 0.0, 0.0])
    assert picture.shape == (thumbnails.HEIGHT, thumbnails.WIDTH, 3)
    white = (picture == 255).all(2)
    empty_slot = (picture == thumbnails.EMPTY).all(2)
    bar = (picture == thumbnails.WINNER_COLOR).all(2)
    rows_with = lambda mask: np.flatnonzero(mask.any(1))  # noqa: E731
    assert rows_with(white).max() < rows_with(empty_slot).min()  # images on top, slots below
    assert bar[rows_with(white)].any() and not bar[rows_with(empty_slot)].any()


def test_gate_ranges_paints_a_dead_gate_red_and_a_live_one_blue() -> None:
    rng = np.random.default_rng(0)
    live = rng.uniform(0.2, 0.8, (100, 1, 1))
    dead = rng.uniform(0.0, 0.05, (100, 1, 1))
    picture = thumbnails.gate_ranges([np.concatenate([live, dead], 2)])
    columns = lambda color: np.flatnonzero((picture == color).all(2).any(0))  # noqa: E731
    assert columns(thumbnails.LIVE).size and columns(thumbnails.DEAD).size
    assert columns(thumbnails.LIVE).max() < columns(thumbnails.DEAD).min()


def test_point_clusters_tints_each_region_with_its_cluster() -> None:
    points = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 0.5], [0.0, -0.5]])
    plane = thumbnails.canvas_plane(points)
    regions = (plane[:, 0] > 0).astype(int)  # cluster 1 wins the right half
    picture = thumbnails.point_clusters(points, np.array([0, 1, 0, 1]), 2, regions)
    left, right = picture[5, 5], picture[5, -5]
    assert not np.array_equal(left, right)
    assert np.array_equal(picture[5, 10], left) and np.array_equal(picture[-5, -10], right)
