"""The ``[plugins.messaging]`` section of crm.toml: its JSON Schema, defaults and typed form.

Every key is optional::

    [plugins.messaging]
    base_url = "https://crm.example.com/crm"   # links: {base_url}/c/{signed}, {base_url}/u/{signed}
    secret = "..."                    # signing secret (default: generated, kept in the database)
    default_locale = "zh-CN"
    locales = ["zh-CN", "en"]
    locale_attribute = "locale"       # customer.attributes key holding the customer's locale
    timezone_attribute = "timezone"   # customer.attributes key holding an IANA zone name
    default_timezone = "Asia/Shanghai"
    quiet_hours = { start = "21:00", end = "08:00" }   # absent: no quiet hours
    caps = [{ channel = "*", max = 3, days = 7, purposes = ["marketing", "survey"] }]
    retry = { max_attempts = 5, base_seconds = 60, factor = 2 }
    lease_minutes = 10                # a message 'sending' longer than this is 'interrupted'
    batch_size = 100                  # messages claimed per claim transaction
    notify = { surveys = true, complaints = true, reminders = true, care = true }
    default_channel = "email"         # or { marketing = "email", service = "sms", staff = "inbox" }

    [plugins.messaging.channels.email]
    type = "smtp"                     # smtp | http | in_app | folder | a plugin's type
    consent = "marketing_email"       # the Consent field that must be true
    host = "smtp.example.com"
    port = 587
    starttls = true
    username = "crm"
    password = "${SMTP_PASSWORD}"
    from = "CRM <crm@example.com>"

    [plugins.messaging.staff.alice]
    email = "alice@example.com"       # channel name -> address of the user on it

Without ``channels`` one channel exists: ``in_app`` (type ``in_app``, consent
``data_processing``). Each channel's type checks its own options at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import time
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from attrs import frozen

from crmcore import Consent
from crmcore.errors import ConfigError

if TYPE_CHECKING:
    from crmcore import CRM

#: The name the plugin registers under: its config section, profile and metrics key.
PLUGIN_NAME = "messaging"
#: What a message is for. ``staff`` messages go to users, not customers.
PURPOSES = ("marketing", "survey", "service", "staff")
#: Purposes of messages to customers.
CUSTOMER_PURPOSES = ("marketing", "survey", "service")
#: The other plugins' messages ``notify`` turns on or off (all on by default).
NOTIFICATIONS = ("surveys", "complaints", "reminders", "care")
#: Core's consent flags (``crmcore.model.entities.Consent``).
CONSENT_FIELDS: tuple[str, ...] = tuple(a.name for a in attrs.fields(Consent))
#: What a channel addresses a customer by (``address`` option); ``address_attribute`` overrides.
ADDRESS_KINDS = ("email", "phone", "customer")

_NAME = {"type": "string", "pattern": r"^[a-z][a-z0-9_]{0,39}$"}
_CLOCK = {"type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9]$"}
_TEXT = {"type": "string", "minLength": 1, "maxLength": 200}

#: JSON Schema of ``[plugins.messaging]`` (channel types check their own options).
CONFIG_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "base_url": {"type": "string", "pattern": r"^https?://", "maxLength": 500},
        "secret": {"type": "string", "minLength": 16, "maxLength": 200},
        "default_locale": {"type": "string", "minLength": 2, "maxLength": 20},
        "locales": {"type": "array", "items": {"type": "string", "minLength": 2, "maxLength": 20}},
        "locale_attribute": _TEXT,
        "timezone_attribute": _TEXT,
        "default_timezone": {"type": "string", "minLength": 1, "maxLength": 64},
        "quiet_hours": {
            "type": "object",
            "additionalProperties": False,
            "required": ["start", "end"],
            "properties": {"start": _CLOCK, "end": _CLOCK},
        },
        "caps": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["max", "days"],
                "properties": {
                    "channel": {"type": "string", "minLength": 1, "maxLength": 40},
                    "max": {"type": "integer", "minimum": 0, "maximum": 100_000},
                    "days": {"type": "integer", "minimum": 1, "maximum": 3650},
                    "purposes": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"enum": list(CUSTOMER_PURPOSES)},
                    },
                },
            },
        },
        "retry": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "max_attempts": {"type": "integer", "minimum": 1, "maximum": 100},
                "base_seconds": {"type": "integer", "minimum": 0, "maximum": 86_400},
                "factor": {"type": "number", "minimum": 1, "maximum": 10},
            },
        },
        "lease_minutes": {"type": "integer", "minimum": 1, "maximum": 10_080},
        "batch_size": {"type": "integer", "minimum": 1, "maximum": 10_000},
        "notify": {
            "type": "object",
            "additionalProperties": False,
            "properties": {k: {"type": "boolean"} for k in NOTIFICATIONS},
        },
        "default_channel": {
            "oneOf": [
                _NAME,
                {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {p: _NAME for p in PURPOSES},
                },
            ]
        },
        "channels": {
            "type": "object",
            "propertyNames": _NAME,
            "additionalProperties": {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": _NAME,
                    "consent": {"enum": list(CONSENT_FIELDS)},
                    "address": {"enum": list(ADDRESS_KINDS)},
                    "address_attribute": _TEXT,
                },
            },
        },
        "staff": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "propertyNames": _NAME,
                "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 320},
            },
        },
    },
}


@frozen
class Cap:
    """At most ``max`` messages per customer in any rolling ``days`` (``channel`` "*": all)."""

    channel: str
    max: int
    days: int
    purposes: tuple[str, ...] = ("marketing", "survey")


@frozen
class Retry:
    """How temporary failures are retried (see docs, "Retries and backoff")."""

    max_attempts: int = 5
    base_seconds: float = 60
    factor: float = 2

    def delay_seconds(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt: base * factor^(attempts-1)."""
        return float(self.base_seconds * self.factor ** max(attempts - 1, 0))


@frozen
class ChannelConfig:
    """One configured channel: its name, type, consent field and the type's own options."""

    name: str
    type: str
    consent: str
    options: Mapping[str, Any]
    address: str | None = None
    address_attribute: str | None = None


@frozen
class Settings:
    """The validated ``[plugins.messaging]`` section, with defaults filled in."""

    channels: Mapping[str, ChannelConfig]
    default_channels: Mapping[str, str]
    staff: Mapping[str, Mapping[str, str]]
    caps: tuple[Cap, ...] = (Cap("*", 3, 7),)
    retry: Retry = Retry()
    quiet_start: time | None = None
    quiet_end: time | None = None
    base_url: str = "http://localhost:8000/crm"
    secret: str | None = None
    default_locale: str = "zh-CN"
    locales: tuple[str, ...] = ("zh-CN", "en")
    locale_attribute: str = "locale"
    timezone_attribute: str = "timezone"
    default_timezone: str = "Asia/Shanghai"
    lease_minutes: int = 10
    batch_size: int = 100
    #: Which other plugins' messages are queued (:mod:`crmcore_messaging.integrations`).
    notify: Mapping[str, bool] = attrs.field(factory=lambda: dict.fromkeys(NOTIFICATIONS, True))

    def channel(self, name: str) -> ChannelConfig:
        """The channel called ``name``; ValidationError naming the configured ones when unknown."""
        from crmcore.errors import ValidationError

        found = self.channels.get(name)
        if found is None:
            known = ", ".join(sorted(self.channels))
            raise ValidationError(
                f"channel: {name!r} is not a configured channel (configured: {known})",
                field="channel",
                value=name,
            )
        return found

    def default_channel(self, purpose: str) -> str:
        """The channel a message of ``purpose`` goes through when none is named."""
        return self.default_channels.get(purpose) or next(iter(self.channels))

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> Settings:
        """Build settings from a section validated against :data:`CONFIG_SCHEMA`.

        Raises ConfigError for an unknown time zone or channel name.
        """
        prefix = f"config: plugins.{PLUGIN_NAME}"
        zone = str(section.get("default_timezone", "Asia/Shanghai"))
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"{prefix}.default_timezone: {zone!r} is not a known time zone"
            ) from None
        given = section.get("channels") or {"in_app": {"type": "in_app"}}
        channels: dict[str, ChannelConfig] = {}
        for name, raw in given.items():
            options = {
                k: v
                for k, v in raw.items()
                if k not in ("type", "consent", "address", "address_attribute")
            }
            channels[name] = ChannelConfig(
                name=name,
                type=str(raw["type"]),
                consent=str(raw.get("consent", "data_processing")),
                options=options,
                address=raw.get("address"),
                address_attribute=raw.get("address_attribute"),
            )
        chosen = section.get("default_channel", {})
        # A name is the default of the customer purposes; staff messages go first by the
        # addresses a user has (see queue.enqueue_staff), unless a mapping names "staff".
        defaults = (
            dict.fromkeys(CUSTOMER_PURPOSES, chosen) if isinstance(chosen, str) else dict(chosen)
        )
        for purpose, name in defaults.items():
            if name not in channels:
                raise ConfigError(
                    f"{prefix}.default_channel: {name!r} ({purpose}) is not a configured channel"
                )
        staff = {str(u): dict(v) for u, v in section.get("staff", {}).items()}
        for user, addresses in staff.items():
            for name in addresses:
                if name not in channels:
                    raise ConfigError(
                        f"{prefix}.staff.{user}: {name!r} is not a configured channel"
                    )
        caps = tuple(
            Cap(
                str(c.get("channel", "*")),
                int(c["max"]),
                int(c["days"]),
                tuple(c.get("purposes", ("marketing", "survey"))),
            )
            for c in section.get("caps", [{"channel": "*", "max": 3, "days": 7}])
        )
        for cap in caps:
            if cap.channel != "*" and cap.channel not in channels:
                raise ConfigError(f"{prefix}.caps: {cap.channel!r} is not a configured channel")
        retry = section.get("retry", {})
        quiet = section.get("quiet_hours")
        return cls(
            channels=channels,
            default_channels=defaults,
            staff=staff,
            caps=caps,
            retry=Retry(
                int(retry.get("max_attempts", 5)),
                float(retry.get("base_seconds", 60)),
                float(retry.get("factor", 2)),
            ),
            quiet_start=_clock(quiet["start"]) if quiet else None,
            quiet_end=_clock(quiet["end"]) if quiet else None,
            base_url=str(section.get("base_url", "http://localhost:8000/crm")).rstrip("/"),
            secret=section.get("secret"),
            default_locale=str(section.get("default_locale", "zh-CN")),
            locales=tuple(section.get("locales", ("zh-CN", "en"))),
            locale_attribute=str(section.get("locale_attribute", "locale")),
            timezone_attribute=str(section.get("timezone_attribute", "timezone")),
            default_timezone=zone,
            lease_minutes=int(section.get("lease_minutes", 10)),
            batch_size=int(section.get("batch_size", 100)),
            notify={k: bool(section.get("notify", {}).get(k, True)) for k in NOTIFICATIONS},
        )


def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


_settings: WeakKeyDictionary[CRM, Settings] = WeakKeyDictionary()


def remember_settings(crm: CRM) -> Settings:
    """Read and check the plugin's section once, when ``crm`` has opened (``crm_startup``).

    Also builds every channel once, so that a channel's bad option is a
    ConfigError at start-up, not at the first send.
    """
    settings = Settings.from_config(crm.plugin_config(PLUGIN_NAME))
    _settings[crm] = settings
    from crmcore_messaging.channels import registry

    registry.check_channels(crm, settings)
    return settings


def settings_of(crm: CRM) -> Settings:
    """Return the settings ``crm`` opened with."""
    settings = _settings.get(crm)
    return settings if settings is not None else remember_settings(crm)


__all__ = [
    "ADDRESS_KINDS",
    "CONFIG_SCHEMA",
    "CONSENT_FIELDS",
    "CUSTOMER_PURPOSES",
    "PLUGIN_NAME",
    "PURPOSES",
    "Cap",
    "ChannelConfig",
    "Retry",
    "Settings",
    "remember_settings",
    "settings_of",
]
