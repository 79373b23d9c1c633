"""The ``[plugins.activities]`` section of crm.toml: its JSON Schema, defaults and typed form.

Every key is optional::

    [plugins.activities]
    timezone = "Europe/Berlin"   # of users without their own, and of the days ``plan`` counts
    due_time = "09:00"           # local time of day planned tasks are due
    reminder_minutes = 30        # default lead time of a reminder (0: none)
    key_tag = "key_account"      # the tag that makes a customer a key customer
    no_contact_days = 30         # churn signal: a key customer not contacted for this long
    care_window_days = 30        # purchases within this many days after a care action count

    [plugins.activities.users.alice]
    timezone = "Asia/Shanghai"
    manager = "olga"             # who gets escalations of alice's customers

    [plugins.activities.kinds.call]   # replaces the default of that kind
    channel = "phone"            # core Channel of the interaction completing it records
    interaction = "call"         # core InteractionKind of that interaction

    [plugins.activities.followups]    # automatic follow-ups from other plugins (all on)
    churn_alert = true
    sla_breach = true
    detractor = true
    renewal = true
    overdue_payment = true
    due_days = 1                 # days after the event the follow-up is due
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import time
from typing import Any
from weakref import WeakKeyDictionary
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from attrs import frozen

from crmcore import CRM, Channel, InteractionKind
from crmcore.errors import ConfigError

#: The name the plugin registers under: its config section, profile and metrics key.
PLUGIN_NAME = "activities"
#: Statuses of an activity (overdue is computed: planned and due before now).
STATUSES = ("planned", "done", "cancelled")
#: Follow-up sources that can be switched off.
FOLLOWUPS = ("churn_alert", "sla_breach", "detractor", "renewal", "overdue_payment")

#: Default kinds: name -> (channel, interaction kind) of the interaction completing records.
DEFAULT_KINDS: Mapping[str, tuple[str, str]] = {
    "call": ("phone", "call"),
    "meeting": ("field_sales", "meeting"),
    "visit": ("field_sales", "visit"),
    "email": ("email", "email"),
    "message": ("sms", "chat"),
    "todo": ("other", "note"),
    "care": ("phone", "care"),
}

_CODE = {"type": "string", "pattern": r"^[a-z][a-z0-9_]{0,39}$"}
_TZ = {"type": "string", "minLength": 1, "maxLength": 64}
_CLOCK = {"type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9]$"}

#: JSON Schema of ``[plugins.activities]``.
CONFIG_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "timezone": _TZ,
        "due_time": _CLOCK,
        "reminder_minutes": {"type": "integer", "minimum": 0, "maximum": 10080},
        "key_tag": {"type": "string", "minLength": 1, "maxLength": 100},
        "no_contact_days": {"type": "integer", "minimum": 1, "maximum": 3650},
        "care_window_days": {"type": "integer", "minimum": 1, "maximum": 3650},
        "users": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"timezone": _TZ, "manager": {"type": "string", "minLength": 1}},
            },
        },
        "kinds": {
            "type": "object",
            "propertyNames": _CODE,
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["channel", "interaction"],
                "properties": {
                    "channel": {"enum": [c.value for c in Channel]},
                    "interaction": {"enum": [k.value for k in InteractionKind]},
                },
            },
        },
        "followups": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                **{name: {"type": "boolean"} for name in FOLLOWUPS},
                "due_days": {"type": "integer", "minimum": 0, "maximum": 365},
            },
        },
    },
}


@frozen
class Kind:
    """An activity kind and the interaction its completion records."""

    name: str
    channel: str
    interaction: str


@frozen
class User:
    """A user's time zone and manager."""

    timezone: str
    manager: str | None = None


@frozen
class Settings:
    """The validated ``[plugins.activities]`` section, with defaults filled in."""

    kinds: Mapping[str, Kind]
    users: Mapping[str, User]
    timezone: str = "UTC"
    due_time: time = time(9, 0)
    reminder_minutes: int = 30
    key_tag: str = "key_account"
    no_contact_days: int = 30
    care_window_days: int = 30
    followups: frozenset[str] = frozenset(FOLLOWUPS)
    followup_due_days: int = 1

    def zone_of(self, user: str | None) -> ZoneInfo:
        """The time zone of ``user`` (the default one for unknown users and ``None``)."""
        found = self.users.get(user) if user is not None else None
        return ZoneInfo(found.timezone if found is not None else self.timezone)

    def tz_name(self, user: str | None) -> str:
        """The name of the time zone of ``user``."""
        found = self.users.get(user) if user is not None else None
        return found.timezone if found is not None else self.timezone

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> Settings:
        """Build settings from a section validated against :data:`CONFIG_SCHEMA`.

        Raises ConfigError for an unknown time zone (the schema cannot say).
        """
        prefix = f"config: plugins.{PLUGIN_NAME}"

        def zone(name: str, where: str) -> str:
            try:
                ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                raise ConfigError(f"{prefix}.{where}: {name!r} is not a known time zone") from None
            return name

        kinds = {n: Kind(n, c, i) for n, (c, i) in DEFAULT_KINDS.items()}
        for name, given in section.get("kinds", {}).items():
            kinds[name] = Kind(name, str(given["channel"]), str(given["interaction"]))
        users = {
            name: User(
                zone(str(u.get("timezone", section.get("timezone", "UTC"))), f"users.{name}"),
                u.get("manager"),
            )
            for name, u in section.get("users", {}).items()
        }
        hours, minutes = str(section.get("due_time", "09:00")).split(":")
        follow = section.get("followups", {})
        return cls(
            kinds=kinds,
            users=users,
            timezone=zone(str(section.get("timezone", "UTC")), "timezone"),
            due_time=time(int(hours), int(minutes)),
            reminder_minutes=int(section.get("reminder_minutes", 30)),
            key_tag=str(section.get("key_tag", "key_account")),
            no_contact_days=int(section.get("no_contact_days", 30)),
            care_window_days=int(section.get("care_window_days", 30)),
            followups=frozenset(n for n in FOLLOWUPS if follow.get(n, True)),
            followup_due_days=int(follow.get("due_days", 1)),
        )


_settings: WeakKeyDictionary[CRM, Settings] = WeakKeyDictionary()


def remember_settings(crm: CRM) -> Settings:
    """Read and check the plugin's section once, when ``crm`` has opened (``crm_startup``)."""
    settings = Settings.from_config(crm.plugin_config(PLUGIN_NAME))
    _settings[crm] = settings
    return settings


def settings_of(crm: CRM) -> Settings:
    """Return the settings ``crm`` opened with."""
    settings = _settings.get(crm)
    return settings if settings is not None else remember_settings(crm)


__all__ = [
    "CONFIG_SCHEMA",
    "DEFAULT_KINDS",
    "FOLLOWUPS",
    "PLUGIN_NAME",
    "STATUSES",
    "Kind",
    "Settings",
    "User",
    "remember_settings",
    "settings_of",
]
