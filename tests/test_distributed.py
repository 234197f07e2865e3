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
from distributed_worker import CASES, CLI_SETTINGS, COMMON

from moa_core.checkpoint import load_checkpoint
from moa_core.cli import _relay_until_trouble, main
from moa_core.distributed import ShardingError, World, check_batches_share
from moa_core.explore import run_dataset
from moa_core.train.evaluate import evaluate
from moa_core.train.run import train_model


def test_each_rank_takes_its_contiguous_share_of_a_global_batch() -> None:
    batch = torch.arange(10)
    shards = [World(rank, 3).shard(batch).tolist() for rank in range(3)]
    assert shards == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert World().shard(batch) is batch and not World().active and World().is_main


def test_no_processes_is_one_line(capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "moa_plus", "--nproc", "0", "--dataset", "digits"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()  # refused before any process
    assert len(lines) == 1 and lines[0] == "moa: error: --nproc must be ≥ 1, got 0", lines


def test_a_batch_that_leaves_a_process_without_samples_is_refused() -> None:
    """What each rank of `--nproc 2` says when the last global batch holds one sample."""
    with pytest.raises(ShardingError, match="a batch of 1 samples cannot be shared by 2"):
        check_batches_share(201, 100, World(0, 2))
    with pytest.raises(ShardingError, match="a batch of 1 samples cannot be shared by 2"):
        check_batches_share(300, 1, World(1, 2))
    check_batches_share(202, 100, World(0, 2))  # 100, 100, 2: each process has a sample
    check_batches_share(201, 100, World())  # one process: any batch


def test_the_ranks_stderr_is_passed_on_until_the_first_error(
    capsys: pytest.CaptureFixture,
) -> None:
    """`moa train --nproc N` relays the pipeline's steps as they come; an error and what follows
    (torchrun's trace) are held back, for one line in their place."""
    lines = ["[rank0]:1/4 training a VAE\n", "W warning\n", "[rank1]:moa: error: no\n", "E x\n"]
    held = _relay_until_trouble(iter(lines))
    assert capsys.readouterr().err == "1/4 training a VAE\nW warning\n"
    assert held == ["moa: error: no\n", "E x\n"]


@pytest.mark.slow
def test_every_global_statistic_and_noise_spans_the_global_batch(tmp_path: Path) -> None:
    """Two optimizer phases, augmentation, relevance normalization, gate regularization,
    Gumbel and Gaussian noise, the batch entropy, VaDE's GMM fit (rank 0's kept): each case on two
    processes the model it trains on one (same losses; every rank ends with the same weights).
    MoE-VAE's pipeline under `--nproc 2` (rank 0 pretrains alone) was checked by hand against
    one process (benchmarks/RESULTS.md): its K on 300 digits flips with 4e-8 in the codes,
    which a process's first run and later ones differ by, so no test compares it."""
    out = tmp_path / "cases.json"
    worker = Path(__file__).with_name("distributed_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", "2", str(worker), str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    two = json.loads(out.read_text())
    assert sorted(two) == sorted([*(name for name, *_ in CASES), "cli", "pipeline batch"])
    assert two["pipeline batch"] == {
        "refused": "a batch of 1 samples cannot be shared by 2 processes: change batch_size",
        "announced": [],  # before rank 0's pretraining
    }
    for name, model, dataset, settings in CASES:
        one = train_model(model, dataset, {**COMMON, **settings}).result
        assert two[name]["status"] == "finished" and two[name]["same_weights"], name
        losses = [row["train_loss"] for row in one.history]
        rtol = 1e-2 if "bf16" in name else 1e-4  # bf16 keeps ~3 digits: shards round apart
        np.testing.assert_allclose(two[name]["losses"], losses, rtol=rtol, err_msg=name)
    _check_the_command_line_run(two["cli"], tmp_path)


def _check_the_command_line_run(cli: dict, folder: Path) -> None:
    """`moa train moa_plus --dataset digits --nproc 2` (each rank's `cli.main` under torchrun;
    `--nproc` itself starts torchrun in the big-run browser test): the per-epoch losses of one
    process within 1e-4, one line from rank 0, a checkpoint that loads and evaluates."""
    one = train_model("moa_plus", "digits", {**CLI_SETTINGS, "device": "cpu"}).result
    assert cli["code"] == 0
    lines = cli["stdout"].splitlines()
    assert len(lines) == 1, cli["stdout"]  # rank 0 alone prints
    two = json.loads(lines[0])
    assert two["processes"] == 2
    out = Path(two["checkpoint"])
    record = out.with_name("two.metrics.jsonl")
    assert {out.name, record.name} <= {path.name for path in folder.iterdir()}
    losses_two = [json.loads(line)["train_loss"] for line in record.read_text().splitlines()]
    losses_one = [row["train_loss"] for row in one.history]
    assert len(losses_one) == len(losses_two) == 2 and losses_one[1] < losses_one[0]
    np.testing.assert_allclose(losses_two, losses_one, rtol=1e-4)
    loaded = load_checkpoint(out)  # loads and evaluates like any other run
    assert loaded.config.model_type == "moa_plus" and loaded.meta["epochs_done"] == 2
    data = run_dataset(loaded.meta)
    assert evaluate(loaded.model, data)["nmi"] == pytest.approx(two["nmi"], abs=1e-4)


def test_a_world_size_set_by_hand_that_is_no_number_is_one_line(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORLD_SIZE", "two")
    assert main(["train", "moa_plus", "--dataset", "digits", "--epochs", "1"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["moa: error: WORLD_SIZE must be a whole number of processes, got 'two'"]
