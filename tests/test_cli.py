"""`moa train / eval / list`: one JSON line per result; one stderr line and exit 2 per error."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from moa_core.checkpoint import read_metadata
from moa_core.cli import main
from moa_core.data import image_sets, load_dataset

TRAIN_KEYS = {
    "model",
    "dataset",
    "epochs",
    "seconds",
    "acc",
    "nmi",
    "ari",
    "clusters_used",
    "checkpoint",
    "processes",
}
TINY_SET = [
    "max_samples=300",
    "batch_size=64",
    "expert_channels=[4,8]",
    "gate_channels=[4,8]",
    "latent_dim=4",
    "num_clusters=3",
]


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Runs go to a temp folder; image sets are never downloaded (offline, like CI)."""

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("network is unreachable (test)")

    runs = tmp_path / "runs"
    monkeypatch.setenv("MOA_RUNS_DIR", str(runs))
    monkeypatch.delenv("MOA_DATA_DIR", raising=False)
    monkeypatch.delenv("MOA_MAX_CHECKPOINT_MB", raising=False)
    monkeypatch.setattr(image_sets, "_torchvision", offline)
    monkeypatch.setattr(image_sets, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian-package")
    return runs


def _run(argv: list[str]) -> tuple[int, str, str]:
    """Call the CLI in-process; (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """One `moa train` into its own runs folder, shared by the tests that read it."""
    runs = tmp_path_factory.mktemp("cli_runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MOA_RUNS_DIR", str(runs))
        code, out, err = _run(
            ["train", "moa_plus", "--dataset", "digits", "--epochs", "1", "--device", "cpu"]
            + ["--set", *TINY_SET]
        )
    assert (code, err) == (0, ""), err
    lines = out.splitlines()
    assert len(lines) == 1
    return json.loads(lines[0]), runs


def _assert_one_line_error(code: int, out: str, err: str, *needles: str) -> None:
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith("moa: error: ")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err


# --- train / eval / list ----------------------------------------------------------------


def test_train_prints_one_json_line_with_the_documented_keys(trained: tuple[dict, Path]) -> None:
    result, runs = trained
    assert set(result) == TRAIN_KEYS
    assert result["model"] == "moa_plus" and result["dataset"] == "digits"
    assert result["epochs"] == 1
    assert result["seconds"] >= 0
    for key in ("acc", "nmi", "ari"):
        assert isinstance(result[key], float)
    assert 0.0 <= result["nmi"] <= 1.0 and -1.0 <= result["ari"] <= 1.0
    # With 3 clusters over 10 digit classes, ACC can match at most the 3 largest classes.
    labels = load_dataset("digits", limit=300, seed=0).y
    top3 = torch.bincount(labels).sort(descending=True).values[:3].sum().item()
    assert 0.0 < result["acc"] <= round(top3 / 300, 4)
    assert result["clusters_used"] in (1, 2, 3)
    path = Path(result["checkpoint"])
    assert path.parent == runs and path.suffix == ".safetensors" and path.is_file()


def test_eval_of_the_checkpoint_reproduces_the_training_scores(
    trained: tuple[dict, Path],
) -> None:
    result, _ = trained
    code, out, err = _run(["eval", result["checkpoint"], "--device", "cpu"])
    assert (code, err) == (0, "")
    evaluated = json.loads(out)
    assert set(evaluated) == TRAIN_KEYS - {"processes"}
    for key in ("nmi", "acc", "ari", "clusters_used"):
        assert evaluated[key] == result[key], key
    assert evaluated["dataset"] == "digits" and evaluated["epochs"] == 1


def test_eval_on_another_dataset_scores_that_dataset(trained: tuple[dict, Path]) -> None:
    result, _ = trained
    code, out, err = _run(
        ["eval", result["checkpoint"], "--dataset", "digits:0,1", "--device", "cpu"]
    )
    assert (code, err) == (0, "")
    evaluated = json.loads(out)
    assert evaluated["dataset"] == "digits:0,1"
    # 2 classes, 3 clusters: the 6 cluster→class matchings average N/3 hits, so ACC ≥ 1/3.
    assert 1 / 3 - 1e-4 <= evaluated["acc"] <= 1.0


def test_list_shows_the_run(trained: tuple[dict, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    result, runs = trained
    monkeypatch.setenv("MOA_RUNS_DIR", str(runs))
    code, out, err = _run(["list"])
    assert (code, err) == (0, "")
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 1
    row = rows[0]
    assert row["path"] == result["checkpoint"]
    assert row["model"] == "moa_plus" and row["dataset"] == "digits"
    assert round(row["nmi"], 4) == result["nmi"]


def test_list_of_an_empty_registry_prints_nothing() -> None:
    assert _run(["list"]) == (0, "", "")


def test_train_with_out_writes_there(tmp_path: Path) -> None:
    target = tmp_path / "mine" / "model.safetensors"
    code, out, err = _run(
        ["train", "moa", "--dataset", "digits:3,5", "--epochs", "1", "--device", "cpu"]
        + ["--out", str(target), "--set", *TINY_SET[:5]]
    )
    assert (code, err) == (0, "")
    result = json.loads(out)
    assert result["checkpoint"] == str(target) and target.is_file()
    assert result["dataset"] == "digits:3,5"
    # num_clusters follows the class subset (2) unless set: at most 2 clusters in use.
    assert result["clusters_used"] <= 2
    assert not (tmp_path / "runs").exists()  # nothing went to the registry


def test_set_epochs_is_not_overridden_by_the_flag_default() -> None:
    code, out, err = _run(
        ["train", "moa", "--dataset", "digits", "--device", "cpu"]
        + ["--set", *TINY_SET, "epochs=2", "seed=1"]
    )
    assert (code, err) == (0, "")
    result = json.loads(out)
    assert result["epochs"] == 2
    assert read_metadata(Path(result["checkpoint"]))[1]["train"]["seed"] == 1
    # An explicit flag still wins over --set.
    code, out, err = _run(
        ["train", "moa", "--dataset", "digits", "--device", "cpu", "--epochs", "1"]
        + ["--set", *TINY_SET, "epochs=2"]
    )
    assert (code, err) == (0, "") and json.loads(out)["epochs"] == 1


# --- bad input: exit 2, one line, no traceback ------------------------------------------


TRAIN = ["train", "moa_plus", "--dataset", "digits", "--epochs", "1", "--device", "cpu"]


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["train", "no_such_model", "--dataset", "digits"], ["unknown model type 'no_such_model'"]),
        (["train", "moa", "--dataset", "no_such_set"], ["unknown dataset 'no_such_set'"]),
        (["train", "moa", "--dataset", "digits:42"], ["no class 42"]),
        ([*TRAIN, "--set", "latent_dim"], ["bad --set 'latent_dim'", "key=value"]),
        ([*TRAIN, "--set", "no_such_key=1"], ["no_such_key"]),
        ([*TRAIN, "--set", "latent_dim=four"], ["latent_dim", "int"]),
        ([*TRAIN, "--set", "lr=fast"], ["'lr' must be float"]),
        ([*TRAIN, "--set", "expert_channels=[4,0]"], ["expert_channels"]),
        ([*TRAIN, "--set", "expert_channels=[4,8,16,32,64]"], ["expert_channels", "divisible"]),
        ([*TRAIN, "--set", "image_size=32"], ["1×32×32", "1×16×16"]),
        ([*TRAIN, "--set", "objective=magic"], ["objective"]),
        ([*TRAIN, "--set", "gamma_eps=NaN"], ["gamma_eps", "finite"]),
        ([*TRAIN, "--set", "lr=1e999"], ["'lr' must be a finite number"]),
        ([*TRAIN, "--out", "/proc/no/x.safetensors"], ["--out", "/proc/no/x.safetensors"]),
        ([*TRAIN, "--out", "/tmp"], ["--out /tmp is a folder"]),
        ([*TRAIN, "--set", "eval_limit=0"], ["eval_limit"]),
        ([*TRAIN, "--set", "max_samples=-5"], ["max_samples"]),
        (["train", "moa", "--dataset", "digits", "--set", "device=tpu"], ["unknown device 'tpu'"]),
        (["train", "moa", "--dataset", "digits", "--device", "tpu"], ["unknown device 'tpu'"]),
        (["train", "moa", "--dataset", "digits", "--epochs", "0"], ["epochs"]),
        (["train", "moa", "--dataset", "digits", "--epochs", "two"], ["--epochs"]),
        (["train", "moa_plus", "--dataset", "blobs"], ["needs image data", "points"]),
        (["train", "moa"], ["--dataset"]),
        (["eval", "no/such/file.safetensors"], ["file.safetensors", "no such checkpoint"]),
        (["fly"], ["fly"]),
        ([], ["command"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv: list[str], needles: list[str]) -> None:
    _assert_one_line_error(*_run(argv), *needles)


def test_missing_image_data_names_the_file_and_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("MOA_DATA_DIR", str(empty))
    _assert_one_line_error(
        *_run(["train", "moa", "--dataset", "mnist", "--epochs", "1", "--device", "cpu"]),
        "mnist.npz",
        "MOA_DATA_DIR",
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_one_line() -> None:
    _assert_one_line_error(
        *_run(["train", "moa", "--dataset", "digits", "--device", "cuda"]), "cuda", "no CUDA"
    )


@pytest.mark.parametrize(("spec", "needles"), [("blobs", ["points"]), ("mnist", ["mnist.npz"])])
def test_eval_on_data_the_model_cannot_take(
    trained: tuple[dict, Path], spec: str, needles: list[str]
) -> None:
    result, _ = trained
    argv = ["eval", result["checkpoint"], "--dataset", spec, "--device", "cpu"]
    _assert_one_line_error(*_run(argv), *needles)


# --- the console script, in a real process ----------------------------------------------


def _moa_command() -> list[str]:
    script = Path(sys.executable).parent / "moa"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "moa_core.cli"]


@pytest.mark.slow
def test_console_script_trains_in_a_real_process(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOA_")}
    env.update(MOA_RUNS_DIR=str(tmp_path / "runs"), OMP_NUM_THREADS="1")
    target = tmp_path / "cli.safetensors"
    train = subprocess.run(
        [*_moa_command(), "train", "moa", "--dataset", "digits", "--epochs", "1"]
        + ["--device", "cpu", "--out", str(target), "--set", *TINY_SET],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert train.returncode == 0, train.stderr
    assert train.stderr == ""  # no warnings or logging on stderr either
    lines = train.stdout.splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert set(result) == TRAIN_KEYS and result["checkpoint"] == str(target)
    # The file it wrote scores the same here, in this process.
    code, out, err = _run(["eval", str(target), "--device", "cpu"])
    assert (code, err) == (0, "")
    assert json.loads(out)["nmi"] == result["nmi"]


# --- moe_vae: the pretraining pipeline first (paper 001) --------------------------------

PIPELINE_KEYS = {"k_found", "labeled_fraction", "acc_labeled", "manager_acc", "manager_nmi"}
TINY_PIPELINE = [
    "max_samples=300",
    "vae_epochs=2",
    "manager_epochs=2",
    "start_latent=20",
    "base_filters=4",
    "n_neighbors=15",
    "min_cluster_size=10",
    "device=cpu",
]


@pytest.mark.slow
def test_train_moe_vae_runs_the_pipeline_and_keeps_its_record(isolated: Path) -> None:
    from moa_core.checkpoint import load_checkpoint
    from moa_core.train.pipeline_record import PipelineRecord

    code, out, err = _run(
        ["train", "moe_vae", "--dataset", "digits", "--epochs", "1", "--set", *TINY_PIPELINE]
    )
    assert code == 0, err
    # Each step's name goes to stderr as it starts; stdout is the one JSON line.
    steps = err.splitlines()
    assert [line[:3] for line in steps] == ["1/4", "2/4", "3/4", "4/4"], err
    assert "20 latent dimensions" in steps[0]
    lines = out.splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert set(result) == TRAIN_KEYS | PIPELINE_KEYS | {"latent_sizes"}
    assert result["model"] == "moe_vae" and result["epochs"] == 1
    k = result["k_found"]
    assert isinstance(k, int) and k >= 1 and len(result["latent_sizes"]) == k
    assert all(isinstance(s, int) and 1 <= s <= 20 for s in result["latent_sizes"])
    assert 0.0 < result["labeled_fraction"] <= 1.0
    for key in ("acc_labeled", "manager_acc", "manager_nmi"):
        assert 0.0 <= result[key] <= 1.0, key

    path = Path(result["checkpoint"])
    assert path.parent == isolated
    loaded = load_checkpoint(path)
    record = PipelineRecord.from_dict(loaded.meta["pretraining"])
    assert record.summary() == {key: result[key] for key in [*PIPELINE_KEYS, "latent_sizes"]}
    assert record.dataset == "digits" and record.samples == 300
    assert record.k_found == loaded.config.num_clusters == k
    assert list(loaded.config.expert_latent_sizes) == result["latent_sizes"]
    assert len(record.explained) == 20 and record.threshold == 0.9
    assert set(record.seconds) == {
        "large_vae",
        "retrained_vae",
        "clusters",
        "latent_sizes",
        "manager",
        "mixture",
    }
    assert result["seconds"] == pytest.approx(sum(record.seconds.values()), abs=0.02)
    train = loaded.meta["train"]
    assert train["lr"] == 1e-4 and train["max_samples"] == 300 and train["epochs"] == 1
    # The saved run is scored again on the same 300 samples.
    code, out, err = _run(["eval", str(path), "--device", "cpu"])
    assert (code, err) == (0, "")
    assert json.loads(out)["nmi"] == result["nmi"]


@pytest.mark.slow
def test_train_moe_vae_without_pretraining_uses_a_fixed_k() -> None:
    code, out, err = _run(
        ["train", "moe_vae", "--dataset", "digits", "--epochs", "1", "--device", "cpu"]
        + ["--set", "pretrain=false", "num_clusters=3", "max_samples=300", "base_filters=4"]
        + ["latent_sizes=[4]"]
    )
    assert (code, err) == (0, ""), err
    result = json.loads(out)
    assert set(result) == TRAIN_KEYS  # no "k_found": nothing was pretrained
    assert result["clusters_used"] <= 3
    config, meta = read_metadata(Path(result["checkpoint"]))
    assert config["num_clusters"] == 3 and "pretraining" not in meta


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["pretrain=maybe"], ["pretrain must be true or false", "maybe"]),
        (["pretrain=1"], ["pretrain must be true or false"]),
        (["vae_epochs=0"], ["vae_epochs"]),
        (["threshold=2"], ["threshold"]),
        (["cluster_selection=best"], ["cluster_selection"]),
        (["min_cluster_size=-1"], ["min_cluster_size"]),
        (["pretrain=false", "vae_epochs=2"], ["vae_epochs"]),  # no pretraining to set
    ],
)
def test_bad_pipeline_settings_are_one_line_and_exit_2(
    extra: list[str], needles: list[str]
) -> None:
    argv = ["train", "moe_vae", "--dataset", "digits", "--device", "cpu", "--set", *extra]
    _assert_one_line_error(*_run(argv), *needles)


def test_pretrain_is_not_a_key_of_other_families() -> None:
    _assert_one_line_error(*_run([*TRAIN, "--set", *TINY_SET, "pretrain=false"]), "pretrain")


def test_a_bad_final_setting_fails_before_the_pretraining(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moa_core.train import pretraining

    def started(*args: object, **kwargs: object) -> None:
        raise AssertionError("the pretraining started with a setting the MoE-VAE rejects")

    monkeypatch.setattr(pretraining, "find_size", started)
    argv = ["train", "moe_vae", "--dataset", "digits", "--set", *TINY_PIPELINE, "no_such_key=1"]
    _assert_one_line_error(*_run(argv), "no_such_key")


def test_too_few_samples_for_umap_is_one_line_not_a_traceback(isolated: Path) -> None:
    # 3 samples: UMAP's spectral start would fail deep in scipy.
    settings = [s for s in TINY_PIPELINE if not s.startswith("max_samples")]
    argv = ["train", "moe_vae", "--dataset", "digits", "--set", *settings, "max_samples=3"]
    _assert_one_line_error(*_run(argv), "at least 10 samples", "got 3")
