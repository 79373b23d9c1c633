"""The ``[plugins.complaints]`` section of crm.toml: its JSON Schema, defaults and typed form.

Every key is optional::

    [plugins.complaints]
    categories = ["delivery/late", "delivery/damaged", "billing/overcharge"]  # a tree of paths
    root_causes = ["process", "people", "product", "supplier", "system"]
    recurrence_days = 30          # same customer + same category within N days: a recurrence
    default_severity = "medium"

    [plugins.complaints.sla.high]  # per severity: low, medium, high, critical
    first_response_hours = 4
    resolution_hours = 24

    [plugins.complaints.business_hours]  # absent: every second counts
    timezone = "Europe/Berlin"
    mon = ["09:00-17:00"]             # tue ... sun likewise; a day left out is closed
    holidays = ["2026-12-25"]

    [plugins.complaints.survey_followup]
    category = "feedback/low_score"
    severity = "medium"

    [plugins.complaints.churn]
    recent_days = 90
    repeat_days = 180
    repeat_count = 2
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from weakref import WeakKeyDictionary

from attrs import frozen

from crmcore import CRM
from crmcore.errors import ConfigError
from crmcore_complaints.business_hours import WEEKDAYS, Schedule, schedule_from_config
from crmcore_complaints.workflow import Severity

#: The name the plugin registers under: its config section, profile and metrics key.
PLUGIN_NAME = "complaints"

#: The category tree used when none is configured (parents are implied by the paths).
DEFAULT_CATEGORIES: tuple[str, ...] = (
    "product/defect",
    "product/quality",
    "product/wrong_item",
    "delivery/late",
    "delivery/damaged",
    "delivery/missing",
    "billing/overcharge",
    "billing/refund",
    "service/staff",
    "service/waiting_time",
    "feedback/low_score",
    "other",
)

#: Root causes used when none are configured.
DEFAULT_ROOT_CAUSES: tuple[str, ...] = (
    "process",
    "people",
    "product",
    "supplier",
    "logistics",
    "system",
    "communication",
    "policy",
    "customer",
    "unknown",
)

#: Default SLA targets in hours: (first response, resolution) per severity.
DEFAULT_SLA_HOURS: Mapping[Severity, tuple[float, float]] = {
    Severity.LOW: (48, 240),
    Severity.MEDIUM: (24, 120),
    Severity.HIGH: (8, 48),
    Severity.CRITICAL: (2, 24),
}

_HOURS = {"type": "number", "exclusiveMinimum": 0, "maximum": 87600}
_INTERVALS = {"type": "array", "items": {"type": "string", "pattern": r"^\d{2}:\d{2}-\d{2}:\d{2}$"}}
_NAME = {"type": "string", "pattern": r"^[a-z0-9_]+(/[a-z0-9_]+)*$", "maxLength": 200}

#: JSON Schema of ``[plugins.complaints]``.
CONFIG_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "categories": {"type": "array", "items": _NAME, "minItems": 1, "uniqueItems": True},
        "root_causes": {"type": "array", "items": _NAME, "minItems": 1, "uniqueItems": True},
        "recurrence_days": {"type": "integer", "minimum": 1, "maximum": 3650},
        "default_severity": {"enum": [s.value for s in Severity]},
        "sla": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                s.value: {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"first_response_hours": _HOURS, "resolution_hours": _HOURS},
                }
                for s in Severity
            },
        },
        "business_hours": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "timezone": {"type": "string", "minLength": 1},
                **{day: _INTERVALS for day in WEEKDAYS},
                "holidays": {"type": "array", "items": {"type": "string", "format": "date"}},
            },
        },
        "survey_followup": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "enabled": {"type": "boolean"},
                "category": _NAME,
                "severity": {"enum": [s.value for s in Severity]},
            },
        },
        "churn": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "recent_days": {"type": "integer", "minimum": 1},
                "repeat_days": {"type": "integer", "minimum": 1},
                "repeat_count": {"type": "integer", "minimum": 2},
            },
        },
    },
}


@frozen
class Targets:
    """SLA targets of one severity, in whole seconds."""

    first_response: int
    resolution: int


@frozen
class Settings:
    """The validated ``[plugins.complaints]`` section, with defaults filled in."""

    categories: frozenset[str]
    root_causes: tuple[str, ...]
    targets: Mapping[Severity, Targets]
    schedule: Schedule
    recurrence_days: int = 30
    default_severity: Severity = Severity.MEDIUM
    followup_enabled: bool = True
    followup_category: str = "feedback/low_score"
    followup_severity: Severity = Severity.MEDIUM
    churn_recent_days: int = 90
    churn_repeat_days: int = 180
    churn_repeat_count: int = 2

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> Settings:
        """Build settings from a section already validated against :data:`CONFIG_SCHEMA`.

        Raises :class:`~crmcore.errors.ConfigError` for what the schema cannot
        say: a resolution target shorter than the first-response target, a
        follow-up category outside the tree, a bad business-hours schedule.
        """
        prefix = f"config: plugins.{PLUGIN_NAME}"
        categories = category_tree(section.get("categories", DEFAULT_CATEGORIES))
        targets: dict[Severity, Targets] = {}
        for severity, (fr_default, res_default) in DEFAULT_SLA_HOURS.items():
            given = section.get("sla", {}).get(severity.value, {})
            first = round(float(given.get("first_response_hours", fr_default)) * 3600)
            resolution = round(float(given.get("resolution_hours", res_default)) * 3600)
            if resolution < first:
                raise ConfigError(
                    f"{prefix}.sla.{severity.value}.resolution_hours: "
                    f"{resolution / 3600:g} is shorter than first_response_hours {first / 3600:g}"
                )
            targets[severity] = Targets(first_response=first, resolution=resolution)
        followup = section.get("survey_followup", {})
        followup_category = str(followup.get("category", "feedback/low_score"))
        if followup_category not in categories:
            raise ConfigError(
                f"{prefix}.survey_followup.category: {followup_category!r} is not in the "
                "category tree"
            )
        churn = section.get("churn", {})
        return cls(
            categories=categories,
            root_causes=tuple(section.get("root_causes", DEFAULT_ROOT_CAUSES)),
            targets=targets,
            schedule=schedule_from_config(section.get("business_hours")),
            recurrence_days=int(section.get("recurrence_days", 30)),
            default_severity=Severity(section.get("default_severity", "medium")),
            followup_enabled=bool(followup.get("enabled", True)),
            followup_category=followup_category,
            followup_severity=Severity(followup.get("severity", "medium")),
            churn_recent_days=int(churn.get("recent_days", 90)),
            churn_repeat_days=int(churn.get("repeat_days", 180)),
            churn_repeat_count=int(churn.get("repeat_count", 2)),
        )


def category_tree(paths: Any) -> frozenset[str]:
    """Every node of the tree the ``paths`` describe: each path and all its parents."""
    nodes: set[str] = set()
    for path in paths:
        parts = str(path).split("/")
        nodes.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return frozenset(nodes)


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
