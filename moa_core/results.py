"""Each paper's headline table beside our latest measured numbers, for the Results page.

`paper_tables.json` holds, per table, the paper's numbers copied from `shared/papers`, and
for each row where our measurement lives: a benchmark's name and the keys inside its JSON
line in `benchmarks/results.jsonl`, the command that reproduces it, and a plain flag where
we are short of the paper and why. A row's number is read from the newest line of that
benchmark that holds its keys (a later run of only some datasets does not hide the others).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TABLES = Path(__file__).with_name("paper_tables.json")
MEASUREMENTS = ROOT / "benchmarks" / "results.jsonl"


@dataclass(frozen=True)
class Measurement:
    """Our number for a row: a mean over `n` seeds with its std (n = 1, std 0 for a single
    run) and the seeds' own values where the benchmark kept them."""

    mean: float
    std: float
    n: int
    values: tuple[float, ...]
    device: str  # where it ran, as the benchmark line says

    def text(self) -> str:
        if self.n <= 1:
            return f"{self.mean:.4g} (1 run)"
        return f"{self.mean:.4g} ± {self.std:.2g} ({self.n} seeds)"


@dataclass(frozen=True)
class ResultRow:
    dataset: str
    method: str
    paper: float
    ours: Measurement | None
    ours_key: str  # the benchmark's own name for what it measured (e.g. "mnist:0,1")
    measured_on: str  # what we measured on, in words (a stand-in dataset says so)
    epochs: int | None
    command: str | None
    flag: str
    note: str

    def standing(self, higher_is_better: bool) -> str:
        """In a few words, for the table: not measured, at or beyond the paper, short of it;
        "see why" where a flag qualifies the comparison (a stand-in dataset, other settings)."""
        if self.ours is None:
            return "not measured"
        ahead = self.ours.mean >= self.paper if higher_is_better else self.ours.mean <= self.paper
        if self.flag:
            return "beyond the paper, see why" if ahead else "short, see why"
        return "✓ at or beyond the paper" if ahead else "short of the paper"


@dataclass(frozen=True)
class ResultTable:
    paper: str
    paper_title: str
    table: str
    metric: str
    metric_label: str
    higher_is_better: bool
    rows: tuple[ResultRow, ...]

    @property
    def measured(self) -> int:
        return sum(row.ours is not None for row in self.rows)

    def labels(self) -> list[str]:
        """One label per row, "dataset · method", told apart by what we measured where the
        paper's rows repeat (one paper row, several of our runs)."""
        plain = [f"{row.dataset} · {row.method}" for row in self.rows]
        return [
            f"{label} (ours: {row.ours_key})" if plain.count(label) > 1 and row.ours_key else label
            for label, row in zip(plain, self.rows, strict=True)
        ]


def result_tables(tables: Path = TABLES, measurements: Path = MEASUREMENTS) -> list[ResultTable]:
    """Every paper's table with our numbers resolved (a row whose benchmark has no line
    holding its keys has none)."""
    lines = read_measurements(measurements)
    return [_table(spec, lines) for spec in json.loads(tables.read_text())]


def read_measurements(path: Path) -> list[dict[str, Any]]:
    """The benchmark lines, oldest first; a line that does not parse is left out."""
    lines = []
    for text in path.read_text().splitlines() if path.exists() else []:
        try:
            lines.append(json.loads(text))
        except json.JSONDecodeError:
            continue
    return lines


def _table(spec: dict[str, Any], lines: list[dict[str, Any]]) -> ResultTable:
    rows = tuple(_row(row, lines) for row in spec["rows"])
    fields = ("paper", "paper_title", "table", "metric", "metric_label", "higher_is_better")
    return ResultTable(**{key: spec[key] for key in fields}, rows=rows)


def _row(spec: dict[str, Any], lines: list[dict[str, Any]]) -> ResultRow:
    ours = spec.get("ours") or {}
    return ResultRow(
        dataset=spec["dataset"],
        method=spec["method"],
        paper=float(spec["paper_value"]),
        ours=measurement(lines, ours["name"], ours["path"]) if ours else None,
        ours_key=ours["path"][1] if ours and len(ours["path"]) > 2 else "",
        measured_on=ours.get("dataset", ""),
        epochs=ours.get("epochs"),
        command=spec.get("command"),
        flag=spec.get("flag", ""),
        note=spec.get("note", ""),
    )


def measurement(lines: list[dict[str, Any]], name: str, path: list[str]) -> Measurement | None:
    """The value at `path` in the newest line of benchmark `name` that holds it."""
    for line in reversed(lines):
        if line.get("name") != name:
            continue
        value: Any = line
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return Measurement(float(value), 0.0, 1, (float(value),), line.get("device", ""))
        if isinstance(value, dict) and "mean" in value:
            values = tuple(float(v) for v in value.get("values", []))
            std, n = float(value.get("std", 0.0)), int(value.get("n", len(values) or 1))
            return Measurement(float(value["mean"]), std, n, values, line.get("device", ""))
    return None


@dataclass(frozen=True)
class GalleryResult:
    """One bundled gallery run: one seed (0), so a figure to look at, not a benchmark."""

    name: str
    title: str
    scores: dict[str, float]
    epochs: int
    command: str


GALLERY_SCORES = ("acc", "nmi", "accuracy", "regression_mse")


def gallery_results() -> list[GalleryResult]:
    """The gallery's runs with the scores in their files and the command that retrains each."""
    from moa_core.gallery import RECIPES, gallery_runs

    recipes = {made.name: made for made in RECIPES}
    results = []
    for run in gallery_runs():
        made = recipes.get(run.path.stem)
        if made is None:  # a file without a recipe: nothing says how it was made
            continue
        metrics = run.meta.get("metrics", {})
        scores = {key: round(float(metrics[key]), 4) for key in GALLERY_SCORES if key in metrics}
        epochs = int(run.meta.get("epochs_done", 0))
        results.append(GalleryResult(made.name, made.title, scores, epochs, made.command))
    return results
