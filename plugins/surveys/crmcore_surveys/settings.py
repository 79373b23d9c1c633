"""The ``[plugins.surveys]`` configuration section: schema, defaults, typed settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from weakref import WeakKeyDictionary

from attrs import frozen

from crmcore import CRM

#: The name the plugin registers under: its config section, profile and metrics key.
PLUGIN_NAME = "surveys"

#: JSON Schema of ``[plugins.surveys]`` in crm.toml.
CONFIG_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "nps_threshold": {"type": "number", "minimum": 0, "maximum": 10},
        "low_score_percent": {"type": "number", "minimum": 0, "maximum": 100},
        "index_threshold": {"type": "number", "minimum": 0, "maximum": 100},
        "low_score_alerts": {"type": "boolean"},
        "churn_window_days": {"type": "integer", "minimum": 1},
        "default_channel": {"type": "string", "minLength": 1, "maxLength": 30},
    },
}


@frozen
class Settings:
    """The validated ``[plugins.surveys]`` section, with its defaults.

    * ``nps_threshold`` (7): an NPS answer below it fires ``surveys_low_score``
      (7 makes every detractor, 0-6, fire).
    * ``low_score_percent`` (50): a CSAT, CES or overall answer whose position on its
      scale, ``100 * (score - min) / (max - min)``, is below this fires.
    * ``index_threshold`` (50): a response whose weighted index (0-100) is below it fires.
    * ``low_score_alerts`` (true): set false to fire nothing.
    * ``churn_window_days`` (90): low scores this recent are churn signals.
    * ``default_channel`` ("email"): invitation channel when none is given.
    """

    nps_threshold: float = 7.0
    low_score_percent: float = 50.0
    index_threshold: float = 50.0
    low_score_alerts: bool = True
    churn_window_days: int = 90
    default_channel: str = "email"

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> Settings:
        """Build settings from a section already validated against :data:`CONFIG_SCHEMA`."""
        return cls(**{k: v for k, v in section.items()})


_settings: WeakKeyDictionary[CRM, Settings] = WeakKeyDictionary()


def remember_settings(crm: CRM) -> Settings:
    """Read the plugin's section once, when ``crm`` has opened (``crm_startup``)."""
    settings = Settings.from_config(crm.plugin_config(PLUGIN_NAME))
    _settings[crm] = settings
    return settings


def settings_of(crm: CRM) -> Settings:
    """The settings ``crm`` opened with."""
    settings = _settings.get(crm)
    return settings if settings is not None else remember_settings(crm)
