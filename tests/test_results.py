"""The Results page's numbers: each paper row's measurement is read from the newest benchmark
line that holds it, the shipped tables cover every seed paper with resolvable links and a
flag wherever we are short, and the page draws them all without training anything."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from streamlit.testing.v1 import AppTest

from moa_core.gallery import RECIPES, recipe
from moa_core.results import (
    MEASUREMENTS,
    ROOT,
    TABLES,
    gallery_results,
    measurement,
    read_measurements,
    result_tables,
)
from moa_core.train.setup import parse_assignments

PAPERS = {"000", "001", "002", "003", "004"}


def _lines(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "results.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_row_reads_the_newest_line_that_holds_it(tmp_path: Path) -> None:
    path = _lines(
        tmp_path,
        json.dumps({"name": "b", "results": {"mnist": {"acc": {"mean": 0.5, "std": 0.1, "n": 3}}}}),
        json.dumps({"name": "b", "results": {"usps": {"acc": 0.7}}, "device": "GPU"}),
        "{not json",
        json.dumps({"name": "other", "results": {"mnist": {"acc": 0.9}}}),
    )
    lines = read_measurements(path)
    assert len(lines) == 3  # the broken line is left out
    older = measurement(lines, "b", ["results", "mnist", "acc"])
    assert (older.mean, older.std, older.n) == (0.5, 0.1, 3)  # not hidden by the newer line
    newer = measurement(lines, "b", ["results", "usps", "acc"])
    assert (newer.mean, newer.n, newer.device) == (0.7, 1, "GPU")
    assert measurement(lines, "b", ["results", "cifar10", "acc"]) is None
    assert measurement(lines, "missing", ["results", "mnist", "acc"]) is None


def test_the_shipped_tables_cover_every_paper_and_every_link_resolves() -> None:
    specs = json.loads(TABLES.read_text())
    tables = result_tables(TABLES, MEASUREMENTS)
    assert {table.paper for table in tables} == PAPERS
    for spec, table in zip(specs, tables, strict=True):
        for row_spec, row in zip(spec["rows"], table.rows, strict=True):
            name = f"{table.paper} {row.dataset} · {row.method}"
            assert (row_spec.get("ours") is None) == (row.ours is None), f"unresolved: {name}"
            if row.ours is None:
                assert row.flag, f"{name}: not measured, and no word on why"
                continue
            assert row.command and row.command.count("benchmarks.run") == 1, name
            behind = (
                row.ours.mean < row.paper if table.higher_is_better else row.ours.mean > row.paper
            )
            assert row.flag or not behind, f"{name}: short of the paper without a flag"
        assert len(set(table.labels())) == len(table.rows), table.table  # bars never stack


def test_the_page_shows_every_paper_without_training() -> None:
    at = AppTest.from_file(str(ROOT / "app_pages" / "results.py"), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    *papers, gallery = [h.value for h in at.subheader]
    assert {heading.split(":")[0] for heading in papers} == {f"Paper {p}" for p in PAPERS}
    assert gallery == "The gallery's runs"
    assert len(at.dataframe) == len(result_tables()) + 1


def test_each_gallery_run_has_its_scores_and_the_command_that_retrains_it() -> None:
    results = gallery_results()
    assert {result.name for result in results} == {made.name for made in RECIPES}
    for result in results:
        made = recipe(result.name)
        words = shlex.split(result.command)
        assert words[:5] == ["moa", "train", made.model, "--dataset", made.dataset]
        assert parse_assignments(words[6:]) == {**made.settings, **made.pretraining}
        assert result.scores and result.epochs >= 1, result.name
