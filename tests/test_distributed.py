"""Training on several processes through torchrun (gloo on this CPU): two processes train the
model one process trains (the same per-epoch losses, same global batch and seed), rank 0
alone writes and prints, the checkpoint loads and evaluates like any other, and what cannot
be shared is refused in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from moa_core.checkpoint import load_checkpoint
from moa_core.distributed import World

# 645 samples in batches of 100: the last global batch (45) splits 23 / 22, unevenly.
SETTINGS = ["--dataset", "digits", "--epochs", "2", "--device", "cpu"]
SMALL = ["--set", "max_samples=645", "batch_size=100"]


def _moa(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "moa_core.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)


def _train(out: Path, *extra: str) -> dict:
    done = _moa("train", "moa_plus", *SETTINGS, "--out", str(out), *extra, *SMALL)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout  # rank 0 alone prints
    return json.loads(lines[0])


def _losses(checkpoint: str) -> list[float]:
    record = Path(checkpoint).with_name(Path(checkpoint).stem + ".metrics.jsonl")
    return [json.loads(line)["train_loss"] for line in record.read_text().splitlines()]


@pytest.mark.slow
def test_two_gloo_processes_train_the_model_one_process_trains(tmp_path: Path) -> None:
    one = _train(tmp_path / "one.safetensors")
    two = _train(tmp_path / "two.safetensors", "--nproc", "2")
    assert (one["processes"], two["processes"]) == (1, 2)
    losses_one, losses_two = _losses(one["checkpoint"]), _losses(two["checkpoint"])
    assert len(losses_one) == len(losses_two) == 2
    assert losses_one[1] < losses_one[0]  # it trained
    np.testing.assert_allclose(losses_two, losses_one, rtol=1e-4)
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == sorted(
        f"{n}{s}" for n in ("one", "two") for s in (".safetensors", ".metrics.jsonl")
    )
    loaded = load_checkpoint(Path(two["checkpoint"]))
    assert loaded.config.model_type == "moa_plus" and loaded.meta["epochs_done"] == 2
    evaluated = _moa("eval", two["checkpoint"], "--device", "cpu")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["nmi"] == two["nmi"]


def test_each_rank_takes_its_contiguous_share_of_a_global_batch() -> None:
    batch = torch.arange(10)
    shards = [World(rank, 3).shard(batch).tolist() for rank in range(3)]
    assert shards == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert World().shard(batch) is batch and not World().active and World().is_main


@pytest.mark.parametrize(
    "args,needle",
    [
        (["moa_plus", "--nproc", "0"], "--nproc must be ≥ 1"),
        (["moe_vae", "--nproc", "2"], "moe_vae trains in one process"),
        (["neural_em", "--nproc", "2", "--device", "cpu"], "trains in 2 phases"),  # per rank
    ],
)
def test_what_cannot_be_shared_is_one_line(args: list[str], needle: str) -> None:
    done = _moa("train", *args, "--dataset", "digits")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("moa: error: ") and needle in lines[0], lines
