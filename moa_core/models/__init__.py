"""Model families, one module each, registered by `model_type`."""

from moa_core.models.base import ConfigError, MixtureOutput, ModelConfig
from moa_core.models.registry import build_model, config_class, config_from_dict, model_types

__all__ = [
    "ConfigError",
    "MixtureOutput",
    "ModelConfig",
    "build_model",
    "config_class",
    "config_from_dict",
    "model_types",
]
