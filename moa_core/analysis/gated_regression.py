"""What the Gated regression page computes: a regressor's gate and prediction over the plane,
its experts against the per-class maps that made the targets, and paper 002's Table 1.

The gate maps (argmax and entropy of q(c|x) on a grid) are an extension: paper 002 has no
gate-region figure (spec §3). Expert k is the affine map W_k x + b_k (§8.2); the targets are
y = W_c x + b_c with one seeded map per true class c (spec §2.1), so an expert that owns
class c's region has learned its job when (W_k, b_k) ≈ (W_c, b_c).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import torch
from torch import nn

from moa_core.analysis.density import GRID_RESOLUTION, square_grid
from moa_core.analysis.eval_mode import eval_mode
from moa_core.blocks.gated_experts import AffineExperts
from moa_core.data import Dataset, labelled_splits
from moa_core.data.regression import attach_targets, baseline_scores, class_affine_maps
from moa_core.models import ModelConfig
from moa_core.train.jobs import JobSpec
from moa_core.train.run import training_samples
from moa_core.ui_state import PageSettings

SNAPSHOT_KEY = "regression"
SHOWN_POINTS = 400  # training points drawn over each panel (SVG markers cost the redraw)
MODEL_TYPES = ("dvmoe", "deep_moe")  # the paper's contrast: DMVAE gate vs softmax MLP gate
MODEL_NAMES = {"dvmoe": "DVMoE", "deep_moe": "DeepMoE"}
OUTPUT_DIMS = (1, 2, 5)  # Table 1's rows, read as output dimensions (spec §2.3a)
# Paper 002, Table 1, verbatim (spec §2.3): test error Σ_outputs (ŷ − y)², mean over the test
# set; the document calls the rows "dimensions of the latent variable z".
PAPER_TABLE1: dict[int, dict[str, float]] = {
    1: {"Spiral DeepMoE": 10.0424, "Spiral DVMoE": 0.0312, "MNIST DeepMoE": 28.4584,
        "MNIST DVMoE": 34.0551},
    2: {"Spiral DeepMoE": 20.4247, "Spiral DVMoE": 0.0434, "MNIST DeepMoE": 209.028,
        "MNIST DVMoE": 208.142},
    5: {"Spiral DeepMoE": 180.117, "Spiral DVMoE": 96.1049, "MNIST DeepMoE": 880.126,
        "MNIST DVMoE": 680.714},
}  # fmt: skip


class RegressionPlane(TypedDict):
    """One redraw's worth of a 2-D regressor: grid values[…, r, c] at (xs[c], ys[r])."""

    xs: np.ndarray  # [R]
    ys: np.ndarray  # [R]
    gate_probs: np.ndarray  # [K, R, R], q(c=k|x)
    predictions: np.ndarray  # [out, R, R], ŷ(x) = Σ_k q(c=k|x)(W_k x + b_k)
    expert_weights: np.ndarray  # [K, out, 2], W_k
    expert_bias: np.ndarray  # [K, out], b_k
    points: np.ndarray  # [n, 2], a seeded sample of the training points
    classes: np.ndarray  # [n], their true class index
    targets: np.ndarray  # [n, out], their targets y
    point_experts: np.ndarray  # [n], the expert the gate picks for each (argmax)
    num_classes: int  # of the data's labels: the number of per-class target maps
    class_names: list[str]  # by class index


def affine_experts(model: nn.Module) -> AffineExperts:
    """The model's bank of affine experts, whatever the family (paper 002, §8.2)."""
    for module in model.modules():
        if isinstance(module, AffineExperts):
            return module
    raise ValueError(f"{type(model).__name__} has no affine experts")


@torch.no_grad()
def regression_plane(
    model: nn.Module, data: Dataset, resolution: int = GRID_RESOLUTION, seed: int = 0
) -> RegressionPlane:
    """The gate and the prediction on a square grid around `data`'s 2-D points (which carry
    targets), the experts' maps and a sample of points; the model is run as it is (callers
    put it in eval mode: q(c|x) without Gumbel noise, spec §4.13)."""
    if data.targets is None or data.x.shape[1:] != (2,):
        raise ValueError(f"'{data.name}' is not 2-D points with regression targets")
    xs, ys, plane = square_grid(data.x, resolution)
    out = model(plane)
    if out.predictions is None:
        raise ValueError(f"{type(model).__name__} makes no predictions")
    generator = torch.Generator().manual_seed(seed)
    keep = torch.randperm(len(data), generator=generator)[:SHOWN_POINTS].sort().values
    shown = data.take(keep.to(data.x.device))
    experts = affine_experts(model)
    num_classes = len(data.label_values) or data.num_classes
    k, r = out.gate_probs.shape[1], resolution
    return RegressionPlane(
        xs=xs.cpu().numpy(),
        ys=ys.cpu().numpy(),
        gate_probs=out.gate_probs.float().T.reshape(k, r, r).cpu().numpy(),
        predictions=out.predictions.float().T.reshape(-1, r, r).cpu().numpy(),
        expert_weights=experts.weight.detach().float().cpu().numpy(),
        expert_bias=experts.bias.detach().float().cpu().numpy(),
        points=shown.x.float().cpu().numpy(),
        classes=shown.class_indices().cpu().numpy(),
        targets=shown.targets.float().cpu().numpy(),
        point_experts=model(shown.x).gate_probs.argmax(1).cpu().numpy(),
        num_classes=num_classes,
        class_names=_class_names(data, num_classes),
    )


def _class_names(data: Dataset, num_classes: int) -> list[str]:
    """Names by class index; `class_names` lists only the labels present, so a sample that
    misses one falls back to numbers."""
    if len(data.class_names) == num_classes:
        return list(data.class_names)
    return [f"class {index}" for index in range(num_classes)]


def plane_hook(model: nn.Module, data: Dataset) -> dict[str, RegressionPlane]:
    """The Trainer's snapshot hook (`SnapshotHook`): the plane under `SNAPSHOT_KEY`."""
    return {SNAPSHOT_KEY: regression_plane(model, data)}


def saved_plane(model: nn.Module, config: ModelConfig, data: Dataset) -> RegressionPlane:
    """A saved run's plane over the samples it trained on, with its own targets (`config`'s
    output size and target seed), the model in eval mode on its own device."""
    device = next(model.parameters()).device
    with eval_mode(model), torch.no_grad():
        return regression_plane(model, config.prepare_dataset(data).to(device))


def gate_entropy(gate_probs: np.ndarray) -> np.ndarray:
    """H(q(c|x)) = −Σ_k q_k log q_k over axis 0 (nats; 0 = sure, log K = undecided)."""
    p = np.clip(gate_probs, 1e-12, 1.0)
    return -(p * np.log(p)).sum(0)


def expert_outputs(plane: RegressionPlane) -> np.ndarray:
    """Every expert's output at the shown points, W_k x + b_k: [n, out, K]."""
    weights, bias = plane["expert_weights"], plane["expert_bias"]
    return np.einsum("koi,ni->nok", weights, plane["points"]) + bias.T[None]


def class_of_expert(plane: RegressionPlane) -> np.ndarray:
    """For each expert, the true class most of the points it wins belong to (-1: it wins none)."""
    k = plane["gate_probs"].shape[0]
    owners = np.full(k, -1)
    for expert in range(k):
        won = plane["classes"][plane["point_experts"] == expert]
        if won.size:
            owners[expert] = int(np.bincount(won).argmax())
    return owners


@dataclass(frozen=True)
class ExpertFit:
    """Expert k beside the true map of the class it serves (paper 002, §8.2; spec §2.1)."""

    expert: int
    share: float  # share of the shown points the gate sends to it
    cls: int  # -1 when it wins no points
    class_name: str  # "" when it wins no points
    weights: np.ndarray  # [out, 2]
    bias: np.ndarray  # [out]
    true_weights: np.ndarray | None  # [out, 2] of class `cls`
    true_bias: np.ndarray | None  # [out]


def expert_fits(plane: RegressionPlane, target_seed: int) -> list[ExpertFit]:
    """Each expert's (W_k, b_k) beside the seeded map of the class whose points it wins most:
    the maps `attach_targets` drew for (2 inputs, out, classes, target_seed)."""
    weights, bias = plane["expert_weights"], plane["expert_bias"]
    out = weights.shape[1]
    true_w, true_b = class_affine_maps(2, out, plane["num_classes"], target_seed)
    owners = class_of_expert(plane)
    fits = []
    for k, cls in enumerate(owners):
        share = float((plane["point_experts"] == k).mean())
        known = cls >= 0
        fits.append(
            ExpertFit(
                expert=k,
                share=share,
                cls=int(cls),
                class_name=plane["class_names"][cls] if known else "",
                weights=weights[k],
                bias=bias[k],
                true_weights=true_w[:, :, cls].numpy() if known else None,
                true_bias=true_b[:, cls].numpy() if known else None,
            )
        )
    return fits


def regression_baselines(
    spec: str, output_dim: int, target_seed: int, max_samples: int, seed: int
) -> dict[str, float]:
    """The test errors a regressor must beat on the run's own targets (spec §5.2): a constant
    and one affine map, fitted on the samples the run trains on (as `train_model` picks them),
    and the test targets' total variance Σ_outputs Var(y), to read an error as a share."""
    train = attach_targets(training_samples(spec, max_samples, seed, True), output_dim, target_seed)
    test = attach_targets(labelled_splits(spec)[1], output_dim, target_seed)
    total_variance = float(test.targets.double().var(0, unbiased=False).sum())
    return {**baseline_scores(train, test), "target_variance": total_variance}


def table1_rows(
    live: dict[int, dict[str, float]], baselines: dict[int, dict[str, float]]
) -> dict[str, list]:
    """Paper 002's Table 1 (spiral columns) beside this session's runs, for st.dataframe: one
    row per output dim; `live[out]` maps a model name to its test error, `baselines[out]`
    holds `regression_baselines`. This session's numbers come as text, "—" where missing."""
    names = [MODEL_NAMES[t] for t in MODEL_TYPES]
    columns: dict[str, list] = {"output dim": list(OUTPUT_DIMS)}
    for name in reversed(names):  # the paper orders Deep MoE first
        columns[f"paper: {name}"] = [PAPER_TABLE1[out][f"Spiral {name}"] for out in OUTPUT_DIMS]
    for name in reversed(names):
        columns[f"here: {name}"] = [_rounded(live.get(out, {}).get(name)) for out in OUTPUT_DIMS]
    for key, label in (
        ("baseline_constant_mse", "here: constant"),
        ("baseline_affine_mse", "here: one affine map"),
    ):
        columns[label] = [_rounded(baselines.get(out, {}).get(key)) for out in OUTPUT_DIMS]
    return columns


def _rounded(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


@dataclass
class RegressionSettings(PageSettings):
    """The Gated regression page's widgets. [REPO] trains both with Adam 2e-3, batch 200;
    a lesson's run keeps 5,000 of spiral25k's 25,000 points and few epochs (the test side,
    5,000 points, is whole)."""

    dataset: str = "spiral25k"
    output_dim: int = 1
    latent_dim: int = 10
    epochs: int = 20
    max_samples: int = 5000
    seed: int = 0
    target_seed: int = 0

    def job_specs(self) -> list[JobSpec]:
        """DVMoE and DeepMoE on the same samples, targets and seed, each drawing its plane."""
        shared = {
            "epochs": int(self.epochs),
            "max_samples": int(self.max_samples),
            "seed": int(self.seed),
            "output_dim": int(self.output_dim),
            "target_seed": int(self.target_seed),
        }
        own = {"dvmoe": {"latent_dim": int(self.latent_dim)}, "deep_moe": {}}
        return [
            JobSpec(
                model_type,
                self.dataset,
                {**shared, **own[model_type]},
                label=MODEL_NAMES[model_type],
                snapshot_hooks=(plane_hook,),
            )
            for model_type in MODEL_TYPES
        ]
