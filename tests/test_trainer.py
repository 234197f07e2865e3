"""Trainer on the embedded digits with tiny models: learning, seeds, controls, NaN guard, data."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
import torch
from tiny import TINY_MODEL

from moa_core.metrics import clustering_scores
from moa_core.models import ConfigError
from moa_core.train.control import TrainingControl
from moa_core.train.run import prepare, train_model
from moa_core.train.trainer import SNAPSHOT_SAMPLES, Trainer, TrainEvent

N = 240
BATCH = 48  # 5 batches per epoch
TINY = {**TINY_MODEL, "max_samples": N, "batch_size": BATCH, "device": "cpu"}


def _trainer(
    model_type: str = "moa_plus",
    control: TrainingControl | None = None,
    device: str = "cpu",
    **overrides: object,
) -> tuple[Trainer, list[TrainEvent]]:
    model, _, train_config, dataset = prepare(
        model_type, "digits", {**TINY, "device": device, **overrides}
    )
    events: list[TrainEvent] = []
    trainer = Trainer(model, dataset, train_config, torch.device(device), [events.append], control)
    return trainer, events


def _batch_losses(events: list[TrainEvent], epoch: int) -> list[float]:
    return [e.loss for e in events if e.kind == "batch" and e.epoch == epoch]


def _wait_until(condition, timeout: float = 60.0) -> None:
    """Poll `condition` (a guard against hanging, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


# --- learning ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_type", "lr", "factor"), [("moa_plus", 2e-3, 0.6), ("moa", 2e-2, 0.8)]
)
def test_loss_decreases_over_epochs(model_type: str, lr: float, factor: float) -> None:
    trainer, events = _trainer(model_type, epochs=4, lr=lr)
    result = trainer.fit()
    assert result.status == "finished" and result.epochs_done == 4
    first, last = np.mean(_batch_losses(events, 1)), np.mean(_batch_losses(events, 4))
    assert last < factor * first
    assert len(_batch_losses(events, 1)) == math.ceil(N / BATCH)
    kinds = [e.kind for e in events]
    assert kinds.count("epoch") == 4 and kinds[-1] == "finished"


def test_the_first_event_shows_the_initial_weights_before_any_batch() -> None:
    """A live view draws at Start, not one epoch later: the `started` snapshot is the
    untrained model's (its gate probabilities match a pass before `fit`)."""
    trainer, events = _trainer(epochs=1)
    trainer.model.eval()
    with torch.no_grad():
        before = trainer.model(trainer.data.x[:SNAPSHOT_SAMPLES]).gate_probs.numpy()
    trainer.fit()
    assert [e.kind for e in events[:2]] == ["started", "batch"]
    np.testing.assert_allclose(events[0].snapshot["gate_probs"], before, rtol=1e-6)
    epoch = next(e for e in events if e.kind == "epoch")
    assert not np.allclose(epoch.snapshot["gate_probs"], before)  # trained since


def test_epoch_events_carry_metrics_and_a_snapshot() -> None:
    trainer, events = _trainer(epochs=1)
    result = trainer.fit()
    epoch = next(e for e in events if e.kind == "epoch")
    assert 0.0 <= epoch.metrics["nmi"] <= 1.0
    assert sum(epoch.metrics["usage"]) == pytest.approx(1.0)
    snap = epoch.snapshot
    k = SNAPSHOT_SAMPLES
    assert snap["inputs"].shape == (k, 1, 16, 16)
    np.testing.assert_array_equal(snap["inputs"], trainer.data.x[:k].numpy())
    assert snap["gate_probs"].shape == (k, 3)
    np.testing.assert_allclose(snap["gate_probs"].sum(1), 1.0, rtol=1e-5)
    assert snap["reconstructions"].shape == (k, 3, 1, 16, 16)
    losses = _batch_losses(events, 1)  # on a CPU the loss is read after every batch
    assert len(losses) == -(-len(trainer.data) // trainer.config.batch_size)
    mean_loss = pytest.approx(sum(losses) / len(losses), rel=1e-6)
    assert result.history == [{"epoch": 1, "train_loss": mean_loss, "metrics": epoch.metrics}]


def test_same_seed_gives_identical_runs_and_another_seed_does_not() -> None:
    settings = {**TINY, "epochs": 2}
    a = train_model("moa_plus", "digits", {**settings, "seed": 3})
    b = train_model("moa_plus", "digits", {**settings, "seed": 3})
    c = train_model("moa_plus", "digits", {**settings, "seed": 4})
    assert a.result.history == b.result.history
    assert a.result.metrics == b.result.metrics
    state_a, state_b, state_c = (r.model.state_dict() for r in (a, b, c))
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert not all(torch.equal(state_a[k], state_c[k]) for k in state_a)


def test_final_metrics_cover_every_sample_while_epochs_use_the_eval_subsample() -> None:
    run = train_model("moa_plus", "digits", {**TINY, "epochs": 1, "eval_limit": 100})
    # Per-epoch usage = counts over the 100-sample subsample: multiples of 1/100.
    epoch_counts = np.array(run.result.history[0]["metrics"]["usage"]) * 100
    np.testing.assert_allclose(epoch_counts, np.round(epoch_counts), atol=1e-9)
    # The final figures score all 240 samples: recompute them from the model's gate.
    model = run.model.eval()
    with torch.no_grad():
        clusters = model(run.dataset.x).gate_probs.argmax(1).numpy()
    expected = clustering_scores(run.dataset.y.numpy(), clusters, 3)
    assert set(run.result.metrics) == set(expected)
    for key, value in expected.items():
        assert run.result.metrics[key] == pytest.approx(value), key
    assert np.bincount(clusters, minlength=3).sum() == N


# --- controls ---------------------------------------------------------------------------


def test_control_step_counts_down_and_pauses_again() -> None:
    control = TrainingControl()
    assert not control.paused
    control.pause()
    control.step(2)
    assert not control.paused
    assert control.wait_for_turn() and not control.paused
    assert control.wait_for_turn() and control.paused
    control.stop()
    assert control.wait_for_turn() is False and control.stopped


def test_resume_after_step_runs_freely() -> None:
    control = TrainingControl()
    control.pause()
    control.step(3)
    assert control.wait_for_turn()
    control.resume()  # the 2 steps left must not pause it again later
    for _ in range(5):
        assert not control.paused  # checked first: waiting on a paused control would hang
        assert control.wait_for_turn()
    assert not control.paused


def test_pause_during_steps_waits_for_a_new_step() -> None:
    control = TrainingControl()
    control.pause()
    control.step(5)
    assert control.wait_for_turn()
    control.pause()
    assert control.paused
    control.step(1)  # one step means one batch, not one plus the 4 left over
    assert control.wait_for_turn() and control.paused


def test_control_learning_rate_is_taken_once_and_must_be_positive() -> None:
    control = TrainingControl()
    assert control.take_learning_rate() is None
    control.set_learning_rate(0.05)
    assert control.take_learning_rate() == 0.05
    assert control.take_learning_rate() is None
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError):
            control.set_learning_rate(bad)


def test_step_while_paused_runs_exactly_that_many_batches_then_stop() -> None:
    control = TrainingControl()
    control.pause()
    trainer, events = _trainer(control=control, epochs=3)
    box: dict = {}
    thread = threading.Thread(target=lambda: box.update(result=trainer.fit()), daemon=True)
    thread.start()
    try:
        control.step(3)
        _wait_until(lambda: len(_batch_losses(events, 1)) >= 3)
        assert control.paused  # the third step re-armed the pause
        time.sleep(0.3)  # a trainer that ignored the pause would run on meanwhile
        assert [e.step for e in events if e.kind == "batch"] == [1, 2, 3]
    finally:
        control.stop()
        thread.join(60)
    assert not thread.is_alive()
    result = box["result"]
    assert result.status == "stopped"
    assert "stopped" in result.message
    assert [e.step for e in events if e.kind == "batch"] == [1, 2, 3]
    assert events[-1].kind == "stopped"
    assert result.epochs_done == 0


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_learning_rate_change_mid_run_reaches_the_optimizer(schedule: str) -> None:
    """Batch k (1-based) of T runs at base × f((k−1)/T); the user's change sets the base."""
    control = TrainingControl()
    trainer, events = _trainer(control=control, epochs=2, lr=2e-3, lr_schedule=schedule)
    seen: list[float] = []

    def watch(event: TrainEvent) -> None:
        if event.kind == "batch":
            seen.append(trainer.optimizers[0].param_groups[0]["lr"])
            if event.step == 2:
                control.set_learning_rate(1e-4)

    trainer.callbacks.append(watch)
    assert trainer.fit().status == "finished"
    total = 2 * math.ceil(N / BATCH)

    def factor(k: int) -> float:
        return 0.5 * (1 + math.cos(math.pi * (k - 1) / total)) if schedule == "cosine" else 1.0

    expected = [(2e-3 if k <= 2 else 1e-4) * factor(k) for k in range(1, total + 1)]
    assert seen == pytest.approx(expected, rel=1e-12)
    last = 1e-4 * factor(total)
    assert all(group["lr"] == pytest.approx(last) for group in trainer.optimizers[0].param_groups)


def test_bad_lr_schedule_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="lr_schedule"):
        prepare("moa", "digits", {**TINY, "lr_schedule": "sawtooth"})


# --- NaN guard --------------------------------------------------------------------------


def _state(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


@pytest.mark.parametrize("check_every", [1, 1000])  # a CPU's checks, and a GPU's sparse ones
def test_nan_loss_fails_and_restores_the_last_epoch_snapshot(check_every: int) -> None:
    trainer, events = _trainer(epochs=3)
    trainer.check_every = check_every  # 1000: the NaN is seen at the epoch's last batch only
    good: dict[str, torch.Tensor] = {}

    def poison(event: TrainEvent) -> None:
        if event.kind == "epoch" and event.epoch == 1:
            good.update(_state(trainer))
            with torch.no_grad():
                trainer.model.gate.net[-1].weight.fill_(float("nan"))

    trainer.callbacks.append(poison)
    result = trainer.fit()
    assert result.status == "failed"
    assert "nan" in result.message.lower()
    assert "epoch 1" in result.message
    assert result.epochs_done == 1
    state = trainer.model.state_dict()
    assert set(state) == set(good)
    for key, value in good.items():
        assert torch.equal(state[key], value), key
        assert torch.isfinite(state[key].float()).all()
    # No batch of epoch 2 was reported, and the failure was the last event.
    assert _batch_losses(events, 2) == []
    assert events[-1].kind == "failed" and events[-1].message == result.message
    assert all(math.isfinite(e.loss) for e in events if e.kind == "batch")


def test_nan_in_the_input_keeps_the_initial_weights() -> None:
    model, _, train_config, dataset = prepare("moa_plus", "digits", {**TINY, "epochs": 2})
    dataset.x[7, 0, 5, 5] = float("nan")
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = Trainer(model, dataset, train_config, torch.device("cpu"))
    result = trainer.fit()
    assert result.status == "failed"
    assert "nan" in result.message.lower() and "initial weights" in result.message
    assert result.epochs_done == 0 and result.history == []
    for key, value in initial.items():
        assert torch.equal(trainer.model.state_dict()[key], value), key


# --- data on the device -----------------------------------------------------------------


def _row_keys(x: torch.Tensor) -> torch.Tensor:
    """One number per sample (a fixed projection), sorted: equal for equal multisets of rows."""
    weights = torch.linspace(0.5, 1.5, x[0].numel(), dtype=torch.float64, device=x.device)
    return (x.flatten(1).double() @ weights).sort().values


def _check_epochs_slice_one_tensor(device: str) -> None:
    trainer, _ = _trainer(device=device, epochs=2)
    data_x = trainer.data.x
    pointer = data_x.data_ptr()
    batches: list[torch.Tensor] = []

    def record(module: torch.nn.Module, args: tuple) -> None:
        if module.training:  # skip the eval passes of metrics and snapshots
            batches.append(args[0].detach().clone())

    trainer.model.register_forward_pre_hook(record)
    assert trainer.fit().status == "finished"
    assert data_x.device.type == device and data_x.shape[0] == N
    assert trainer.data.x.data_ptr() == pointer  # still the same tensor
    per_epoch = math.ceil(N / BATCH)
    assert len(batches) == 2 * per_epoch
    assert all(b.device.type == device for b in batches)
    assert next(trainer.model.parameters()).device.type == device
    for epoch in range(2):
        seen = torch.cat(batches[epoch * per_epoch : (epoch + 1) * per_epoch])
        # Each epoch visits every sample exactly once …
        torch.testing.assert_close(_row_keys(seen), _row_keys(data_x))
    # … in a fresh random order.
    assert not torch.equal(batches[0], batches[per_epoch])


def test_batches_are_shuffled_slices_of_one_data_tensor() -> None:
    _check_epochs_slice_one_tensor("cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_cuda_keeps_data_on_the_gpu() -> None:
    _check_epochs_slice_one_tensor("cuda")
    run = train_model("moa_plus", "digits", {**TINY, "device": "cuda", "epochs": 1, "bf16": True})
    assert run.result.status == "finished"
    assert next(run.model.parameters()).device.type == "cuda"
    assert 0.0 <= run.result.metrics["nmi"] <= 1.0


def test_models_built_in_parallel_threads_get_their_seeds_weights() -> None:
    """Compare mode builds two models at once; each must equal the same seed built alone."""
    alone = {seed: prepare("moa_plus", "digits", {**TINY, "seed": seed})[0] for seed in (3, 4)}
    built: dict[int, torch.nn.Module] = {}

    def build(seed: int) -> None:
        for _ in range(5):  # several rounds, so unlocked seeding would interleave
            built[seed] = prepare("moa_plus", "digits", {**TINY, "seed": seed})[0]

    threads = [threading.Thread(target=build, args=(seed,)) for seed in (3, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for seed, model in alone.items():
        for (name, a), b in zip(
            model.state_dict().items(), built[seed].state_dict().values(), strict=True
        ):
            assert torch.equal(a, b), f"seed {seed}: {name} differs"


@pytest.mark.parametrize("bf16", [True, False])
def test_bf16_autocast_covers_every_training_forward(bf16: bool) -> None:
    """`bf16=True` runs each training forward under autocast (a single-phase family's too,
    whose forward once ran before the autocast began), and evaluation in float32."""
    model, _, config, data = prepare("moa_plus", "digits", {**TINY, "epochs": 1, "bf16": bf16})
    seen: list[tuple[bool, torch.dtype]] = []
    layer = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    layer.register_forward_hook(lambda mod, _, out: seen.append((mod.training, out.dtype)))
    assert Trainer(model, data, config, torch.device("cpu")).fit().status == "finished"
    trained = {dtype for training, dtype in seen if training}
    assert trained == ({torch.bfloat16} if bf16 else {torch.float32})
    assert {dtype for training, dtype in seen if not training} == {torch.float32}
