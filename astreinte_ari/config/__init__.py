"""Configuration layer: YAML files -> validated, immutable objects. Depends on nothing."""

from astreinte_ari.config.loader import ConfigError, ConfigIssue, load_config
from astreinte_ari.config.model import AppConfig, NumberNotAllowed

__all__ = ["AppConfig", "ConfigError", "ConfigIssue", "NumberNotAllowed", "load_config"]
