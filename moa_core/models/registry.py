"""Model registry keyed by `config.model_type`: the only place that maps names to classes."""

from __future__ import annotations

from typing import Any

from torch import nn

from moa_core.models.base import ConfigError, ModelConfig

_REGISTRY: dict[str, tuple[type[ModelConfig], type[nn.Module]]] = {}


def register(config_cls: type[ModelConfig], module_cls: type[nn.Module]) -> None:
    _REGISTRY[config_cls.model_type] = (config_cls, module_cls)


def model_types() -> list[str]:
    _load_families()
    return sorted(_REGISTRY)


def config_class(model_type: str) -> type[ModelConfig]:
    _load_families()
    if model_type not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise ConfigError(f"unknown model type '{model_type}' (known: {known})")
    return _REGISTRY[model_type][0]


def config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Rebuild a config from its JSON dict (as stored in checkpoint metadata)."""
    if not isinstance(data, dict) or "model_type" not in data:
        raise ConfigError("config has no 'model_type'")
    return config_class(str(data["model_type"])).from_dict(data)


def build_model(config: ModelConfig) -> nn.Module:
    _load_families()
    return _REGISTRY[config.model_type][1](config)


def _load_families() -> None:
    """Import the family modules once so they register themselves."""
    import moa_core.models.dmvae  # noqa: F401
    import moa_core.models.gated_regression  # noqa: F401
    import moa_core.models.moa  # noqa: F401
    import moa_core.models.moe_vae  # noqa: F401
    import moa_core.models.multipath  # noqa: F401
    import moa_core.models.neural_em  # noqa: F401
    import moa_core.models.vade  # noqa: F401
