"""The ``[plugins.campaigns]`` section of crm.toml: its JSON Schema, defaults and typed form.

Every key is optional; each is the default of a campaign that does not give its own::

    [plugins.campaigns]
    currency = "EUR"           # the currency revenue, budget and costs are counted in
    control_share = 0.1        # share of the audience held out (0 <= share < 1, 4 decimals)
    attribution_days = 30      # a purchase counts within this many days of the launch
    margin = 1.0               # incremental margin = incremental revenue x margin
    cost_per_message = "0.05"  # cost of each message sent (text or number, 4 decimals)
    channel = "email"          # messaging channel (default: messaging's default channel)
    stratify = true            # stratify the control group by value tier (segmentation)
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from weakref import WeakKeyDictionary

from attrs import frozen

from crmcore import CRM

#: The name the plugin registers under: its config section, profile and metrics key.
PLUGIN_NAME = "campaigns"

_DECIMAL = {"type": ["number", "string"]}

#: JSON Schema of ``[plugins.campaigns]``.
CONFIG_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "control_share": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
        "attribution_days": {"type": "integer", "minimum": 1, "maximum": 3650},
        "margin": {"type": "number", "minimum": 0, "maximum": 100},
        "cost_per_message": _DECIMAL,
        "channel": {"type": "string", "minLength": 1, "maxLength": 40},
        "stratify": {"type": "boolean"},
    },
}


@frozen
class Settings:
    """The validated ``[plugins.campaigns]`` section, with defaults filled in."""

    currency: str = "EUR"
    control_share: Decimal = Decimal("0.1")
    attribution_days: int = 30
    margin: Decimal = Decimal(1)
    cost_per_message: Decimal = Decimal(0)
    channel: str | None = None
    stratify: bool = True

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> Settings:
        """Build settings from a section already validated against :data:`CONFIG_SCHEMA`.

        Numbers go through ``str`` (``0.1`` is the decimal 0.1, not the binary
        float); the campaign checks (:mod:`crmcore_campaigns.validation`) refuse
        a share or cost with more than four decimals when a campaign uses it.
        """
        return cls(
            currency=str(section.get("currency", "EUR")),
            control_share=Decimal(str(section.get("control_share", "0.1"))),
            attribution_days=int(section.get("attribution_days", 30)),
            margin=Decimal(str(section.get("margin", "1"))),
            cost_per_message=Decimal(str(section.get("cost_per_message", "0"))),
            channel=None if section.get("channel") is None else str(section["channel"]),
            stratify=bool(section.get("stratify", True)),
        )


_settings: WeakKeyDictionary[CRM, Settings] = WeakKeyDictionary()


def remember_settings(crm: CRM) -> Settings:
    """Read the plugin's section once, when ``crm`` has opened (``crm_startup``)."""
    settings = Settings.from_config(crm.plugin_config(PLUGIN_NAME))
    _settings[crm] = settings
    return settings


def settings_of(crm: CRM) -> Settings:
    """Return the settings ``crm`` opened with."""
    settings = _settings.get(crm)
    return settings if settings is not None else remember_settings(crm)
