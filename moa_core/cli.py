"""Headless `moa train / evaluate / eval / list / export`: one JSON line per result, one line
per error (exit 2)."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import NoReturn

from moa_core import distributed
from moa_core.checkpoint import (
    HISTORY_SUFFIX,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
    save_run,
    scan_runs,
)
from moa_core.data import DatasetError, labelled_splits, load_dataset
from moa_core.data.regression import baseline_scores
from moa_core.device import DeviceError, resolve_device
from moa_core.models import ConfigError
from moa_core.train.evaluate import evaluate
from moa_core.train.history_file import HistoryWriter, write_history
from moa_core.train.pretraining import (
    FOLLOWER_STOPPED,
    PipelineStopped,
    PretrainSettings,
    run_pipeline,
    wants_pretraining,
)
from moa_core.train.run import TrainedRun, train_model, training_samples
from moa_core.train.setup import check_dataset_fits, parse_assignments

# Clustering models report the first four; classifiers their test accuracy and dead gates;
# regressors their gate's clustering, their test error and the two baselines' (spec §5.2).
RESULT_KEYS = (
    "acc",
    "nmi",
    "ari",
    "clusters_used",
    "accuracy",
    "dead_gate_fraction",
    "regression_mse",
    "baseline_constant_mse",
    "baseline_affine_mse",
)


class UsageError(Exception):
    """Bad command-line input: reported in one line with exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="moa", description="Mixture Lab: train and inspect mixture models.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    train = sub.add_parser("train", help="train a model and save a checkpoint")
    train.add_argument("model", help="model type, e.g. moa or moa_plus")
    train.add_argument("--dataset", required=True, help="e.g. digits, mnist, mnist:3,5")
    # No argparse defaults here: TrainConfig's apply, and a `--set epochs=…` is not overridden.
    train.add_argument("--epochs", type=int, help="default 30")
    train.add_argument("--seed", type=int, help="default 0")
    train.add_argument("--device", help="auto (default), cpu or cuda")
    train.add_argument("--out", type=Path, help="checkpoint path (default: a new run in runs/)")
    train.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="processes that train together through torchrun (gloo on CPUs, NCCL on GPUs); "
        "each takes its share of every batch",
    )
    train.add_argument(
        "--history",
        type=Path,
        help="also write each epoch's JSON line here as it ends, and the latest step beside it in "
        "NAME.progress.json (the app follows both)",
    )
    train.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="model or training settings, e.g. num_clusters=4 lr=0.001; for moe_vae also the "
        "pretraining's (vae_epochs=60, min_cluster_size=50, …) or pretrain=false; for dvmoe "
        "and deep_moe the targets' output_dim=2 target_seed=1",
    )
    evaluate_seeds = sub.add_parser(
        "evaluate", help="train and score several seeds: one line each, then mean ± std"
    )
    evaluate_seeds.add_argument("model", help="model type, e.g. moa_plus")
    evaluate_seeds.add_argument("--dataset", required=True, help="e.g. digits, usps, mnist:3,5")
    evaluate_seeds.add_argument("--seeds", type=int, default=5, help="seeds 0 … N − 1 (5)")
    evaluate_seeds.add_argument("--epochs", type=int, help="default: the family's")
    evaluate_seeds.add_argument("--device", help="auto (default), cpu or cuda")
    evaluate_seeds.add_argument(
        "--csv", type=Path, help="the table to write (default: moa-evaluate-MODEL-DATASET.csv)"
    )
    evaluate_seeds.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="as for train"
    )
    ev = sub.add_parser("eval", help="score a checkpoint on a dataset")
    ev.add_argument("checkpoint", type=Path)
    ev.add_argument("--dataset", help="default: the dataset it was trained on")
    ev.add_argument("--split", default="train", choices=("train", "test"))
    ev.add_argument("--device", default="auto")
    sub.add_parser("list", help="list saved runs")
    export = sub.add_parser("export", help="write a run as one HTML page that opens offline")
    export.add_argument("run", help="a checkpoint file, a saved run's id or gallery/NAME")
    export.add_argument("--html", type=Path, required=True, help="the page to write")
    export.add_argument("--device", default="auto")
    return parser


def _scores(metrics: dict) -> dict:
    return {
        k: round(metrics[k], 4) if isinstance(metrics[k], float) else metrics[k]
        for k in RESULT_KEYS
        if k in metrics
    }


def cmd_train(args: argparse.Namespace) -> dict | list:
    flags = {"epochs": args.epochs, "seed": args.seed, "device": args.device}
    overrides = {
        **parse_assignments(args.set),
        **{key: value for key, value in flags.items() if value is not None},
    }
    if args.out is not None:
        _check_writable(args.out, "--out", ".safetensors")  # fail now, not after the whole training
    pretrains = wants_pretraining(args.model, overrides)
    world, rank_device = distributed.join(resolve_device(args.device or "auto").type)
    if rank_device is not None:
        overrides["device"] = str(rank_device)
    if pretrains:
        return _train_pipeline(args, overrides, world)
    callbacks = [HistoryWriter(args.history)] if args.history and world.is_main else []
    try:
        run = train_model(args.model, args.dataset, overrides, callbacks)
    finally:
        distributed.leave()
    if run.result.status == "failed":
        raise UsageError(run.result.message)
    if not world.is_main:  # rank 0 alone writes and prints
        return []
    line = _saved(args, run, run.checkpoint_meta())
    write_checkpoint_history(Path(line["checkpoint"]), run.result.history)
    return {**line, "processes": world.size}


def write_checkpoint_history(checkpoint: Path, history: list[dict]) -> Path:
    """Each epoch's mean training loss and scores, one JSON line each, beside the checkpoint."""
    return write_history(checkpoint.with_name(checkpoint.stem + HISTORY_SUFFIX), history)


def _without_nproc(argv: list[str]) -> list[str]:
    kept, skip = [], False
    for arg in argv:
        if skip or arg.startswith("--nproc="):
            skip = False
            continue
        skip = arg == "--nproc"
        if not skip:
            kept.append(arg)
    return kept


_RANK_PREFIX = re.compile(r"^\[rank\d+\]:")  # torchrun's mark on a rank's stderr lines


def launch_processes(nproc: int, argv: list[str]) -> int:
    """`moa train … --nproc N` as torchrun would start it: N processes on this machine, each
    running the same command; rank 0 prints the result line. Returns torchrun's exit code."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "moa_core.cli",
        *_without_nproc(argv),  # each process learns its place from torchrun's environment
    ]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as processes:
        held = _relay_until_trouble(processes.stderr)
    errors = [line.rstrip("\n") for line in held if line.startswith("moa: error: ")]
    if processes.returncode and errors:  # once, without torchrun's trace; rank 0's reason first
        print(min(errors, key=lambda line: FOLLOWER_STOPPED in line), file=sys.stderr)
        return 2
    sys.stderr.writelines(held)
    return processes.returncode


def _relay_until_trouble(stream: Iterable[str]) -> list[str]:
    """Pass the ranks' stderr on as it comes (the pipeline's steps, warnings) up to the first
    error line or traceback; return that and everything after, for the caller to judge."""
    held: list[str] = []
    for line in stream:
        line = _RANK_PREFIX.sub("", line)
        if held or line.startswith(("moa: error: ", "Traceback")):
            held.append(line)
        else:
            sys.stderr.write(line)
            sys.stderr.flush()
    return held


def _train_pipeline(
    args: argparse.Namespace, overrides: dict, world: distributed.World
) -> dict | list:
    """Paper 001's whole pipeline; each step's name goes to stderr as it starts (from rank 0,
    which alone pretrains, writes and prints under several processes)."""
    settings, final = PretrainSettings.take(overrides)
    say = partial(print, file=sys.stderr, flush=True)
    try:
        pipeline = run_pipeline(args.dataset, settings, final, progress=say)
    finally:
        distributed.leave()
    if pipeline is None:
        return []
    line = _saved(args, pipeline.run, pipeline.checkpoint_meta())
    line["seconds"] = round(sum(pipeline.record.seconds.values()), 2)
    write_checkpoint_history(Path(line["checkpoint"]), pipeline.run.result.history)
    return {**line, **pipeline.record.summary(), "processes": world.size}


def _saved(args: argparse.Namespace, run: TrainedRun, meta: dict) -> dict:
    path = (
        save_checkpoint(args.out, run.model, run.config, meta)
        if args.out
        else save_run(run.model, run.config, meta)
    )
    return {
        "model": args.model,
        "dataset": args.dataset,
        "epochs": run.result.epochs_done,
        "seconds": round(run.result.seconds, 2),
        **_scores(run.result.metrics),
        "checkpoint": str(path),
    }


def _check_writable(out: Path, flag: str, suffix: str) -> None:
    if out.is_dir():
        raise UsageError(f"{flag} {out} is a folder; give a file name ending in {suffix}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create the folder for {flag} {out}: {err.strerror}") from None
    try:  # a real trial write: permissions alone miss read-only and special file systems
        tempfile.TemporaryFile(dir=out.parent).close()
    except OSError as err:
        raise UsageError(f"cannot write {flag} {out}: {err.strerror}") from None


def cmd_evaluate(args: argparse.Namespace) -> dict:
    """Each seed's line is printed as that seed ends; the summary is the command's result."""
    # k-means, Gaussian mixtures, UMAP: seconds of imports no other command needs.
    from moa_core.evaluation import EvaluationError, evaluate_seeds, write_csv

    if args.seeds < 1:
        raise UsageError(f"--seeds must be ≥ 1, got {args.seeds}")
    name = "".join(c if c.isalnum() or c in "_-" else "_" for c in args.dataset)
    path = args.csv or Path(f"moa-evaluate-{args.model}-{name}.csv")
    _check_writable(path, "--csv", ".csv")  # fail now, not after every seed's training
    flags = {"epochs": args.epochs, "device": args.device}
    overrides = {
        **parse_assignments(args.set),
        **{key: value for key, value in flags.items() if value is not None},
    }
    if "seed" in overrides:
        raise UsageError("evaluate sets the seed itself (0 … --seeds − 1)")
    say = partial(print, flush=True)
    try:
        lines, summary = evaluate_seeds(
            args.model, args.dataset, overrides, args.seeds, lambda line: say(json.dumps(line))
        )
    except EvaluationError as err:
        raise UsageError(str(err)) from None
    return {**summary, "csv": str(write_csv(path, lines, summary))}


def cmd_eval(args: argparse.Namespace) -> dict:
    start = time.perf_counter()
    device = resolve_device(args.device)
    loaded = load_checkpoint(args.checkpoint, device)
    train = loaded.meta.get("train", {})
    spec = args.dataset or loaded.meta.get("dataset")
    if not spec:
        raise UsageError("checkpoint does not record its dataset: pass --dataset")
    config = loaded.config
    held_out = config.needs_held_out()
    trained_on = partial(
        training_samples, spec, train.get("max_samples", 0), train.get("seed", 0), held_out
    )
    if held_out and args.split == "test":
        dataset = labelled_splits(spec)[1]  # a supervised family's held-out side
    elif args.dataset is None and args.split == "train":
        dataset = trained_on()
    else:
        dataset = load_dataset(spec, args.split)
    check_dataset_fits(config, dataset)
    dataset = config.prepare_dataset(dataset)
    metrics = evaluate(loaded.model, dataset.to(device))
    if dataset.targets is not None:  # the baselines fit on the samples the run trained on
        metrics.update(baseline_scores(config.prepare_dataset(trained_on()), dataset))
    seconds = round(time.perf_counter() - start, 2)
    return {
        "model": loaded.config.model_type,
        "dataset": spec,
        "epochs": loaded.meta.get("epochs_done"),
        "seconds": seconds,
        **_scores(metrics),
        "checkpoint": str(args.checkpoint),
    }


def cmd_list(_: argparse.Namespace) -> list[dict]:
    """One JSON line per run on stdout; each file left out gets a "moa: skipped: …" line on
    stderr, so a pipe reading stdout still sees only runs."""
    listing = scan_runs()
    for line in listing.skipped:
        print(f"moa: {line}", file=sys.stderr)
    return [
        {
            "run": r.run_id,
            "model": r.model_type,
            "dataset": r.meta.get("dataset"),
            "nmi": r.meta.get("metrics", {}).get("nmi"),
            "accuracy": r.meta.get("metrics", {}).get("accuracy"),
            "path": str(r.path),
        }
        for r in listing.runs
    ]


def cmd_export(args: argparse.Namespace) -> dict:
    from moa_core.export import export_run  # the figure modules: ~0.5 s no other command needs

    _check_writable(args.html, "--html", ".html")  # fail now, not after the figures
    done = export_run(args.run, args.html, args.device)
    return {"run": done.run, "html": str(done.html), "bytes": done.bytes, "seconds": done.seconds}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = _parser().parse_args(argv)
        if args.command == "train" and args.nproc < 1:
            raise UsageError(f"--nproc must be ≥ 1, got {args.nproc}")
        if args.command == "train" and args.nproc > 1 and not distributed.launched_by_torchrun():
            return launch_processes(args.nproc, argv)
        commands = {
            "train": cmd_train,
            "evaluate": cmd_evaluate,
            "eval": cmd_eval,
            "list": cmd_list,
            "export": cmd_export,
        }
        command = commands[args.command]
        result = command(args)
    except (
        UsageError,
        ConfigError,
        DatasetError,
        DeviceError,
        CheckpointError,
        PipelineStopped,
        distributed.ShardingError,
    ) as err:
        print(f"moa: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a file the command had to read or write
        print(f"moa: error: {err.strerror or err}: {err.filename or ''}", file=sys.stderr)
        return 2
    lines = result if isinstance(result, list) else [result]
    for line in lines:
        print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
