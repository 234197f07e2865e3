"""`moa evaluate`: one family trained and scored over several seeds, reported honestly.

Deep-clustering scores move with the seed, so a number is shown as mean ± std over seeds,
each seed's line saying what produced it (the seed, the git commit, a hash of the samples,
the library versions, the device), beside in-run baselines on the same samples: k-means on
the pixels, and for families that cluster a UMAP (MoE-VAE's pretraining) a Gaussian mixture
on a UMAP of the pixels."""

from __future__ import annotations

import csv
import hashlib
import platform
import subprocess
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

from moa_core.analysis.embedding import load_umap
from moa_core.data import Dataset
from moa_core.device import describe_device, resolve_device
from moa_core.metrics import clustering_scores, mean_std
from moa_core.train.pretraining import PIPELINE_MODELS, PipelineStopped, train_family
from moa_core.train.run import TrainedRun
from moa_core.train.trainer import warm_up

SCORE_KEYS = ("acc", "nmi", "ari", "accuracy", "regression_mse")
LIBRARIES = ("torch", "numpy", "scikit-learn", "umap-learn", "hdbscan")
PROVENANCE_COLUMNS = ("commit", "data_hash", "device", "python", *LIBRARIES)


class EvaluationError(ValueError):
    """A seed's training did not finish (a NaN loss): one line for the CLI."""


def evaluate_seeds(
    model: str,
    spec: str,
    overrides: dict[str, Any],
    seeds: int,
    on_seed: Callable[[dict], None] = lambda _: None,
) -> tuple[list[dict], dict]:
    """Train and score seeds 0 … seeds − 1; each seed's line goes to `on_seed` as it ends.
    Returns the lines and the summary (mean ± std of each score, seconds and baselines)."""
    commit, libraries = git_commit(), library_versions()
    warm_up()  # the first optimizer step of a process costs seconds: not the first seed's
    lines, baselines = [], []
    for seed in range(seeds):
        start = time.perf_counter()
        try:
            run = train_family(model, spec, {**overrides, "seed": seed})
        except PipelineStopped as err:  # a pretraining step did not finish
            raise EvaluationError(f"seed {seed}: {err}") from None
        seconds = time.perf_counter() - start
        if run.result.status != "finished":
            raise EvaluationError(f"seed {seed}: {run.result.message}")
        scores = {k: round(v, 4) for k, v in run.result.metrics.items() if k in SCORE_KEYS}
        line = {
            "model": model,
            "dataset": spec,
            "seed": seed,
            **scores,
            "epochs": run.result.epochs_done,
            "seconds": round(seconds, 2),
            "commit": commit,
            "data_hash": data_hash(run.dataset),
            "device": describe_device(resolve_device(run.train_config.device)),
            **libraries,
        }
        on_seed(line)
        lines.append(line)
        if not run.config.needs_held_out():  # a clustering: the baselines cluster too
            baselines.append(clustering_baselines(run, seed, uses_umap=model in PIPELINE_MODELS))
    return lines, summarize(model, spec, lines, baselines)


def summarize(model: str, spec: str, lines: list[dict], baselines: list[dict]) -> dict:
    keys = [k for k in (*SCORE_KEYS, "seconds") if all(k in line for line in lines)]
    summary: dict[str, Any] = {"summary": True, "model": model, "dataset": spec}
    summary["seeds"] = [line["seed"] for line in lines]
    summary.update({key: mean_std([line[key] for line in lines]) for key in keys})
    if baselines:
        summary["baselines"] = {
            name: {
                score: mean_std([seed[name][score] for seed in baselines])
                for score in baselines[0][name]
            }
            for name in baselines[0]
        }
    hashes = {line["data_hash"] for line in lines}
    summary["data_hash"] = hashes.pop() if len(hashes) == 1 else "differs by seed"
    provenance = ("commit", "device", "python", *LIBRARIES)
    return {**summary, **{key: lines[0][key] for key in provenance}}


def clustering_baselines(run: TrainedRun, seed: int, uses_umap: bool) -> dict[str, dict]:
    """k-means on the pixels with the model's number of clusters (and, for a family that
    clusters a UMAP, a Gaussian mixture on a 2-D UMAP of the pixels), scored as the model."""
    pixels = run.dataset.x.flatten(1).cpu().numpy()
    labels = run.dataset.y.cpu().numpy()
    k = int(run.config.num_clusters)
    found = KMeans(k, n_init=10, random_state=seed).fit_predict(pixels)
    result = {"kmeans_pixels": _scores(labels, found, k)}
    if uses_umap:
        umap = load_umap()  # numba's kernels: only for the families that need them
        embedding = umap.UMAP(n_components=2, random_state=seed).fit_transform(pixels)
        found = GaussianMixture(k, random_state=seed).fit_predict(embedding)
        result["gmm_umap"] = _scores(labels, found, k)
    return result


def _scores(labels: np.ndarray, clusters: np.ndarray, k: int) -> dict[str, float]:
    scores = clustering_scores(labels, clusters, k)
    return {key: round(float(scores[key]), 4) for key in ("acc", "nmi", "ari")}


def data_hash(dataset: Dataset) -> str:
    """The first 16 hex digits of SHA-256 over the samples and labels trained on."""
    digest = hashlib.sha256()
    digest.update(dataset.x.detach().cpu().contiguous().numpy().tobytes())
    digest.update(dataset.y.cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def git_commit() -> str:
    """This checkout's commit, with "+dirty" when files differ from it; "unknown" outside
    a git checkout."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        if done.returncode:
            raise OSError(done.stderr)
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except OSError:  # no git, or not a checkout
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def write_csv(path: Path, lines: list[dict], summary: dict) -> Path:
    """One row per seed, then a mean and a std row per score, then the baselines' means;
    every row with the provenance columns."""
    scores = [k for k in (*SCORE_KEYS, "seconds") if k in summary]
    columns = ["row", "model", "dataset", "seed", *scores, "epochs", *PROVENANCE_COLUMNS]
    rows = [{"row": "seed", **line} for line in lines]
    common = {key: summary.get(key, "") for key in ("model", "dataset", *PROVENANCE_COLUMNS)}
    for stat in ("mean", "std"):
        rows.append({"row": stat, **common, **{k: summary[k][stat] for k in scores}})
    for name, values in summary.get("baselines", {}).items():
        means = {score: value["mean"] for score, value in values.items()}
        rows.append({"row": f"baseline {name} (mean)", **common, **means})
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path
