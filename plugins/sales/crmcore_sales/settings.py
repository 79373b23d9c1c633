"""The ``[plugins.sales]`` section of crm.toml: its JSON Schema, defaults and typed form.

Every key is optional::

    [plugins.sales]
    currency = "EUR"                 # the currency of reports (money figures are per currency)
    default_pipeline = "new_business"
    attainment = "won"               # or "collected": what counts towards a target
    renewal_notice_days = 60         # contracts whose renewal date is this close are swept
    renewal_pipelines = ["renewal"]  # a deal lost there is a lost renewal (a churn signal)
    churn_days = 365                 # how far back lost deals count as churn signals
    won_reasons = ["price", "product_fit", "relationship", "other"]
    lost_reasons = ["price", "competitor", "no_budget", "no_decision", "timing", "other"]

    [plugins.sales.pipelines.new_business]
    label = "New business"
    stages = [
      { name = "qualification", probability = 10, stale_days = 14 },
      { name = "proposal", probability = 50, stale_days = 21, category = "best_case" },
    ]
    # optional: allowed moves from each open stage (default: any open stage, won and lost)
    moves = { qualification = ["proposal", "lost"] }

Probabilities are whole percentages (0-100). ``won`` and ``lost`` are the two
closed stages of every pipeline and may not be used as stage names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from weakref import WeakKeyDictionary

from attrs import frozen

from crmcore import CRM
from crmcore.errors import ConfigError

#: The name the plugin registers under: its config section, profile and metrics key.
PLUGIN_NAME = "sales"
#: The closed stages every pipeline has.
WON, LOST = "won", "lost"
CLOSED_STAGES = (WON, LOST)
#: Forecast categories of open deals (won deals are ``closed``).
CATEGORIES = ("pipeline", "best_case", "commit")
#: What counts towards a target.
ATTAINMENT_BASES = ("won", "collected")

DEFAULT_WON_REASONS = ("price", "product_fit", "relationship", "service", "other")
DEFAULT_LOST_REASONS = ("price", "competitor", "no_budget", "no_decision", "timing", "other")

DEFAULT_PIPELINES: Mapping[str, Mapping[str, Any]] = {
    "new_business": {
        "label": "New business",
        "stages": [
            {"name": "qualification", "probability": 10, "stale_days": 14},
            {"name": "needs_analysis", "probability": 25, "stale_days": 21},
            {"name": "proposal", "probability": 50, "stale_days": 21, "category": "best_case"},
            {"name": "negotiation", "probability": 75, "stale_days": 14, "category": "commit"},
        ],
    },
    "renewal": {
        "label": "Renewal",
        "stages": [
            {"name": "renewal_due", "probability": 60, "stale_days": 30},
            {
                "name": "renewal_quoted",
                "probability": 80,
                "stale_days": 21,
                "category": "best_case",
            },
            {
                "name": "renewal_negotiation",
                "probability": 90,
                "stale_days": 14,
                "category": "commit",
            },
        ],
    },
}

_CODE = {"type": "string", "pattern": r"^[a-z][a-z0-9_]{0,39}$"}
_CODES = {"type": "array", "items": _CODE, "minItems": 1, "uniqueItems": True}
_STAGE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "probability"],
    "properties": {
        "name": _CODE,
        "probability": {"type": "integer", "minimum": 0, "maximum": 100},
        "stale_days": {"type": "integer", "minimum": 1, "maximum": 3650},
        "category": {"enum": list(CATEGORIES)},
    },
}
_PIPELINE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["stages"],
    "properties": {
        "label": {"type": "string", "minLength": 1, "maxLength": 100},
        "stages": {"type": "array", "items": _STAGE, "minItems": 1},
        "moves": {"type": "object", "additionalProperties": {"type": "array", "items": _CODE}},
        "won_reasons": _CODES,
        "lost_reasons": _CODES,
    },
}

#: JSON Schema of ``[plugins.sales]``.
CONFIG_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "default_pipeline": _CODE,
        "attainment": {"enum": list(ATTAINMENT_BASES)},
        "renewal_notice_days": {"type": "integer", "minimum": 0, "maximum": 3650},
        "renewal_pipelines": {"type": "array", "items": _CODE, "uniqueItems": True},
        "churn_days": {"type": "integer", "minimum": 1, "maximum": 3650},
        "won_reasons": _CODES,
        "lost_reasons": _CODES,
        "pipelines": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": _CODE,
            "additionalProperties": _PIPELINE,
        },
    },
}


@frozen
class Stage:
    """One open stage of a pipeline: its default probability, staleness and category."""

    name: str
    order: int
    probability: int
    stale_days: int | None = None
    category: str = "pipeline"


@frozen
class Pipeline:
    """An ordered list of open stages, then ``won`` and ``lost``, with the allowed moves."""

    name: str
    label: str
    stages: tuple[Stage, ...]
    moves: Mapping[str, frozenset[str]]
    won_reasons: tuple[str, ...]
    lost_reasons: tuple[str, ...]

    @property
    def stage_names(self) -> tuple[str, ...]:
        """The open stages, in order."""
        return tuple(s.name for s in self.stages)

    def stage(self, name: str) -> Stage:
        """The open stage called ``name`` (KeyError when there is none)."""
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)

    def order_of(self, name: str) -> int:
        """The position of a stage: open stages 0..n-1, ``won`` n (``lost`` is -1)."""
        if name == WON:
            return len(self.stages)
        if name == LOST:
            return -1
        return self.stage(name).order


@frozen
class Settings:
    """The validated ``[plugins.sales]`` section, with defaults filled in."""

    pipelines: Mapping[str, Pipeline]
    currency: str = "EUR"
    default_pipeline: str = "new_business"
    attainment: str = "won"
    renewal_notice_days: int = 60
    renewal_pipelines: tuple[str, ...] = ("renewal",)
    churn_days: int = 365

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> Settings:
        """Build settings from a section already validated against :data:`CONFIG_SCHEMA`.

        Raises :class:`~crmcore.errors.ConfigError` for what the schema cannot
        say: a stage called ``won``/``lost`` or given twice, a move naming an
        unknown stage, an unknown default pipeline.
        """
        prefix = f"config: plugins.{PLUGIN_NAME}"
        won_default = tuple(section.get("won_reasons", DEFAULT_WON_REASONS))
        lost_default = tuple(section.get("lost_reasons", DEFAULT_LOST_REASONS))
        pipelines: dict[str, Pipeline] = {}
        for name, given in section.get("pipelines", DEFAULT_PIPELINES).items():
            where = f"{prefix}.pipelines.{name}"
            stages: list[Stage] = []
            for index, raw in enumerate(given["stages"]):
                stage_name = str(raw["name"])
                if stage_name in CLOSED_STAGES:
                    raise ConfigError(
                        f"{where}.stages[{index}].name: {stage_name!r} is reserved for the "
                        "closed stages"
                    )
                if stage_name in {s.name for s in stages}:
                    raise ConfigError(f"{where}.stages[{index}].name: {stage_name!r} is repeated")
                stages.append(
                    Stage(
                        stage_name,
                        index,
                        int(raw["probability"]),
                        None if raw.get("stale_days") is None else int(raw["stale_days"]),
                        str(raw.get("category", "pipeline")),
                    )
                )
            names = [s.name for s in stages]
            targets = {*names, *CLOSED_STAGES}
            moves: dict[str, frozenset[str]] = {s: frozenset(targets - {s}) for s in names}
            for source, allowed in given.get("moves", {}).items():
                if source not in names:
                    raise ConfigError(f"{where}.moves.{source}: not an open stage of {name}")
                unknown = [t for t in allowed if t not in targets]
                if unknown:
                    raise ConfigError(
                        f"{where}.moves.{source}: {unknown[0]!r} is not a stage of {name}"
                    )
                moves[source] = frozenset(allowed) - {source}
            pipelines[name] = Pipeline(
                name,
                str(given.get("label", name.replace("_", " ").capitalize())),
                tuple(stages),
                moves,
                tuple(given.get("won_reasons", won_default)),
                tuple(given.get("lost_reasons", lost_default)),
            )
        default = str(section.get("default_pipeline", next(iter(pipelines))))
        if default not in pipelines:
            raise ConfigError(
                f"{prefix}.default_pipeline: {default!r} is not a configured pipeline"
            )
        renewal = tuple(
            section.get("renewal_pipelines", [p for p in ("renewal",) if p in pipelines])
        )
        for name in renewal:
            if name not in pipelines:
                raise ConfigError(
                    f"{prefix}.renewal_pipelines: {name!r} is not a configured pipeline"
                )
        return cls(
            renewal_pipelines=renewal,
            churn_days=int(section.get("churn_days", 365)),
            pipelines=pipelines,
            currency=str(section.get("currency", "EUR")),
            default_pipeline=default,
            attainment=str(section.get("attainment", "won")),
            renewal_notice_days=int(section.get("renewal_notice_days", 60)),
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
