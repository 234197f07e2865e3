"""Turn (model type, dataset, user overrides) into configs; split `--set` keys between them."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from moa_core.data import Dataset
from moa_core.models import ConfigError, ModelConfig, config_class
from moa_core.models.base import coerce_value


@dataclass
class TrainConfig:
    """How to train, as opposed to what to train (that is the model config)."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    lr_schedule: str = "cosine"  # cosine: anneal to 0 so the last epochs settle; or constant
    seed: int = 0
    device: str = "auto"
    bf16: bool = False
    compile: bool = False
    eval_limit: int = 5000
    max_samples: int = 0  # train on at most this many samples (0: all), seeded choice

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


LR_SCHEDULES = ("cosine", "constant")
TRAIN_KEYS = {f.name for f in dataclasses.fields(TrainConfig)}


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """`['lr=0.01', 'expert_channels=[8,16]']` → dict; values are JSON where they parse."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"bad --set '{item}': expected key=value")
        try:
            result[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            result[key.strip()] = raw
    return result


def split_overrides(overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate training keys (lr, epochs, …) from model-config keys."""
    train = {k: v for k, v in overrides.items() if k in TRAIN_KEYS}
    model = {k: v for k, v in overrides.items() if k not in TRAIN_KEYS}
    return train, model


def train_config_from(
    overrides: dict[str, Any], model_defaults: dict[str, Any] | None = None
) -> TrainConfig:
    """A TrainConfig from user overrides on top of the model family's defaults, type-checked."""
    defaults = TrainConfig()
    merged = {**(model_defaults or {}), **overrides}
    unknown = sorted(set(merged) - TRAIN_KEYS)
    if unknown:
        raise ConfigError(f"unknown training setting(s) {', '.join(unknown)}")
    values = {
        k: coerce_value("training", k, v, type(getattr(defaults, k))) for k, v in merged.items()
    }
    config = TrainConfig(**values)
    if config.epochs < 1 or config.batch_size < 2 or config.lr <= 0:
        raise ConfigError("training: epochs must be ≥ 1, batch_size ≥ 2 and lr > 0")
    if config.eval_limit < 1 or config.max_samples < 0:
        raise ConfigError("training: eval_limit must be ≥ 1 and max_samples ≥ 0 (0: all)")
    if config.lr_schedule not in LR_SCHEDULES:
        raise ConfigError(f"training: lr_schedule must be one of {', '.join(LR_SCHEDULES)}")
    return config


def model_config_for(model_type: str, dataset: Dataset, overrides: dict[str, Any]) -> ModelConfig:
    """A model config sized for `dataset` (channels, image size, one cluster per class)."""
    cls = config_class(model_type)
    fields = {f.name for f in dataclasses.fields(cls)}
    base: dict[str, Any] = {}
    if dataset.image_shape is not None:
        channels, height, width = dataset.image_shape
        if height != width:
            raise ConfigError(f"{model_type} needs square images, got {height}×{width}")
        base.update(in_channels=channels, image_size=height)
    elif "in_features" in fields:
        base["in_features"] = int(dataset.x.shape[1])
    if "input_kind" in fields:  # families that take either kind follow the data
        base["input_kind"] = dataset.kind
    if "num_clusters" in fields:
        base["num_clusters"] = dataset.num_classes
    if "num_classes" in fields:  # a classifier scores every label the spec can hold
        base["num_classes"] = len(dataset.label_values) or dataset.num_classes
    config = cls.from_dict({**base, **overrides})
    check_dataset_fits(config, dataset)
    return config


def check_dataset_fits(config: ModelConfig, dataset: Dataset) -> None:
    """ConfigError unless `dataset` has the kind, channels and image size `config` expects."""
    kind = getattr(config, "input_kind", "image")
    if kind != dataset.kind:
        raise ConfigError(
            f"{config.model_type} needs {kind} data; '{dataset.name}' holds {dataset.kind}"
        )
    if dataset.image_shape is not None:
        channels, height, width = dataset.image_shape
        want = (config.in_channels, config.image_size, config.image_size)
        if (channels, height, width) != want:
            raise ConfigError(
                f"{config.model_type} expects {want[0]}×{want[1]}×{want[2]} images; "
                f"'{dataset.name}' holds {channels}×{height}×{width}"
            )
