"""`moa evaluate`: one line per seed as it ends, a summary whose mean ± std are those of the
lines, baselines on the same samples, and a CSV where every row says what produced it."""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
from importlib import metadata
from pathlib import Path

import pytest

from moa_core.cli import main
from moa_core.evaluation import PROVENANCE_COLUMNS


def test_three_seeds_print_three_lines_and_their_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    table = tmp_path / "moa_plus.csv"
    code = main(
        ["evaluate", "moa_plus", "--dataset", "digits", "--seeds", "3", "--epochs", "2"]
        + ["--csv", str(table), "--set", "max_samples=300"]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    *lines, summary = [json.loads(line) for line in out.out.splitlines()]
    assert [line["seed"] for line in lines] == [0, 1, 2] and summary["seeds"] == [0, 1, 2]
    for key in ("acc", "nmi", "ari", "seconds"):
        values = [line[key] for line in lines]
        assert summary[key]["mean"] == pytest.approx(statistics.fmean(values), abs=1e-4)
        assert summary[key]["std"] == pytest.approx(statistics.stdev(values), abs=1e-4)
    assert len({line["nmi"] for line in lines}) > 1  # the seeds really differ
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True)
    commit = head.stdout.decode().strip()
    for line in lines:
        assert line["commit"].removesuffix("+dirty") == commit and line["epochs"] == 2
        assert len(line["data_hash"]) == 16 and line["torch"] == metadata.version("torch")
        assert line["device"].startswith("CPU")
    kmeans = summary["baselines"]["kmeans_pixels"]
    assert 0 < kmeans["nmi"]["mean"] <= 1 and kmeans["nmi"]["n"] == 3
    rows = list(csv.DictReader(table.open()))
    assert [row["row"] for row in rows] == [
        "seed", "seed", "seed", "mean", "std", "baseline kmeans_pixels (mean)"
    ]  # fmt: skip
    assert set(PROVENANCE_COLUMNS) <= set(rows[0]) and all(row["commit"] for row in rows)
    assert float(rows[3]["nmi"]) == summary["nmi"]["mean"]
    assert summary["csv"] == str(table)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--seeds", "0"], "--seeds must be ≥ 1, got 0"),
        (["--set", "seed=4"], "evaluate sets the seed itself"),
        (["--csv", "."], "is a folder"),
    ],
)
def test_bad_options_are_one_line(
    args: list[str], needle: str, capsys: pytest.CaptureFixture
) -> None:
    assert main(["evaluate", "moa_plus", "--dataset", "digits", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
