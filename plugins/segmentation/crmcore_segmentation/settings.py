"""The ``[plugins.segmentation]`` section: its JSON Schema, defaults and typed settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any
from weakref import WeakKeyDictionary

from attrs import field, frozen

from crmcore import CRM, ConfigError
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires

#: The name the plugin registers under: its config section, profile and metrics key.
PLUGIN_NAME = "segmentation"

_DECIMAL = {"type": ["string", "number"], "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
_RANGE = {
    "type": "array",
    "items": {"type": "integer", "minimum": 1, "maximum": 5},
    "minItems": 2,
    "maxItems": 2,
}
_COSTS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"acquisition": _DECIMAL, "service": _DECIMAL},
}

#: JSON Schema of ``[plugins.segmentation]`` in crm.toml (every key optional).
CONFIG_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "window_days": {"type": "integer", "minimum": 1},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "segments": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "r", "fm"],
                "properties": {
                    "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                    "r": _RANGE,
                    "fm": _RANGE,
                },
            },
        },
        "tiers": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "basis": {"enum": ["monetary", "profit", "predicted_clv"]},
                "high_percent": {"type": "integer", "minimum": 1, "maximum": 100},
                "medium_percent": {"type": "integer", "minimum": 0, "maximum": 100},
            },
        },
        "pareto_percent": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
        "margin": _DECIMAL,
        "profitability": {"enum": ["contribution", "revenue_minus_costs"]},
        "discount_rate": _DECIMAL,
        "expected_lifetime_years": {"type": "integer", "minimum": 1, "maximum": 100},
        "min_tenure_days": {"type": "integer", "minimum": 1},
        "costs": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "acquisition": _DECIMAL,
                "service": _DECIMAL,
                "segments": {"type": "object", "additionalProperties": _COSTS},
            },
        },
        "churn": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "threshold": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                "inactivity_days": {"type": "integer", "minimum": 1},
                "recent_days": {"type": "integer", "minimum": 1},
                "baseline_days": {"type": "integer", "minimum": 1},
                "min_baseline_purchases": {"type": "integer", "minimum": 1},
                "drop_threshold": {"type": "number", "minimum": 0, "maximum": 1},
                "weights": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "frequency_drop": {"type": "number", "minimum": 0},
                        "inactivity": {"type": "number", "minimum": 0},
                        "plugins": {"type": "number", "minimum": 0},
                    },
                },
            },
        },
    },
}


@frozen
class SegmentRule:
    """One row of the RFM segment table: ``name`` when R and FM fall in the inclusive ranges."""

    name: str
    r: tuple[int, int]
    fm: tuple[int, int]

    def matches(self, r: int, fm: int) -> bool:
        """Whether the scores ``(r, fm)`` fall in this row's ranges."""
        return self.r[0] <= r <= self.r[1] and self.fm[0] <= fm <= self.fm[1]


def _rule(name: str, r: tuple[int, int], fm: tuple[int, int]) -> SegmentRule:
    return SegmentRule(name, r, fm)


#: The 11-segment RFM table on (R, FM); first matching row wins. It tiles the 5 x 5 grid.
DEFAULT_SEGMENTS: tuple[SegmentRule, ...] = (
    _rule("champions", (4, 5), (4, 5)),
    _rule("loyal", (3, 3), (4, 5)),
    _rule("potential_loyalists", (4, 5), (2, 3)),
    _rule("new", (5, 5), (1, 1)),
    _rule("promising", (4, 4), (1, 1)),
    _rule("need_attention", (3, 3), (3, 3)),
    _rule("about_to_sleep", (3, 3), (1, 2)),
    _rule("cant_lose", (1, 2), (5, 5)),
    _rule("at_risk", (1, 2), (3, 4)),
    _rule("hibernating", (2, 2), (1, 2)),
    _rule("lost", (1, 1), (1, 2)),
)

#: The forms of customer profitability (``profitability`` in config), the first the default:
#: ``contribution`` = floor(lifetime revenue x margin) - costs;
#: ``revenue_minus_costs`` = lifetime revenue - costs (the 10C framework's customer profitability).
PROFIT_FORMS = ("contribution", "revenue_minus_costs")

#: Segment of a scored customer whose (R, FM) matches no row of a custom table.
OTHER_SEGMENT = "other"


@frozen
class Costs:
    """Acquisition and lifetime service cost of a customer, in the currency's units."""

    acquisition: Decimal = Decimal(0)
    service: Decimal = Decimal(0)


@frozen
class ChurnSettings:
    """The ``churn`` table: signal windows, weights and the at-risk threshold."""

    threshold: float = 0.5
    inactivity_days: int = 90
    recent_days: int = 90
    baseline_days: int = 365
    min_baseline_purchases: int = 2
    drop_threshold: float = 0.5
    weight_frequency_drop: float = 0.4
    weight_inactivity: float = 0.4
    weight_plugins: float = 0.2


@frozen
class Settings:
    """The validated ``[plugins.segmentation]`` section, with every default filled in."""

    window_days: int = 365
    currency: str | None = None
    segments: tuple[SegmentRule, ...] = DEFAULT_SEGMENTS
    tier_basis: str = "monetary"
    high_percent: int = 20
    medium_percent: int = 30
    pareto_percent: Decimal = Decimal(80)
    margin: Decimal = Decimal("0.3")
    profitability: str = PROFIT_FORMS[0]
    discount_rate: Decimal = Decimal("0.1")
    expected_lifetime_years: int = 3
    min_tenure_days: int = 365
    default_costs: Costs = Costs()
    segment_costs: Mapping[str, Costs] = field(factory=dict)
    churn: ChurnSettings = ChurnSettings()

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> Settings:
        """Build settings from a section already validated against :data:`CONFIG_SCHEMA`."""
        tiers = section.get("tiers", {})
        costs = section.get("costs", {})
        churn = section.get("churn", {})
        weights = churn.get("weights", {})
        base = cls()
        segments: Sequence[SegmentRule] = base.segments
        if "segments" in section:
            segments = tuple(
                SegmentRule(s["name"], (s["r"][0], s["r"][1]), (s["fm"][0], s["fm"][1]))
                for s in section["segments"]
            )
        return cls(
            window_days=int(section.get("window_days", base.window_days)),
            currency=section.get("currency"),
            segments=tuple(segments),
            tier_basis=str(tiers.get("basis", base.tier_basis)),
            high_percent=int(tiers.get("high_percent", base.high_percent)),
            medium_percent=int(tiers.get("medium_percent", base.medium_percent)),
            pareto_percent=Decimal(str(section.get("pareto_percent", base.pareto_percent))),
            margin=Decimal(str(section.get("margin", base.margin))),
            profitability=str(section.get("profitability", base.profitability)),
            discount_rate=Decimal(str(section.get("discount_rate", base.discount_rate))),
            expected_lifetime_years=int(
                section.get("expected_lifetime_years", base.expected_lifetime_years)
            ),
            min_tenure_days=int(section.get("min_tenure_days", base.min_tenure_days)),
            default_costs=_costs(costs, Costs()),
            segment_costs={
                name: _costs(value, _costs(costs, Costs()))
                for name, value in costs.get("segments", {}).items()
            },
            churn=ChurnSettings(
                threshold=float(churn.get("threshold", 0.5)),
                inactivity_days=int(churn.get("inactivity_days", 90)),
                recent_days=int(churn.get("recent_days", 90)),
                baseline_days=int(churn.get("baseline_days", 365)),
                min_baseline_purchases=int(churn.get("min_baseline_purchases", 2)),
                drop_threshold=float(churn.get("drop_threshold", 0.5)),
                weight_frequency_drop=float(weights.get("frequency_drop", 0.4)),
                weight_inactivity=float(weights.get("inactivity", 0.4)),
                weight_plugins=float(weights.get("plugins", 0.2)),
            ),
        )


def _costs(section: Mapping[str, Any], fallback: Costs) -> Costs:
    return Costs(
        acquisition=Decimal(str(section.get("acquisition", fallback.acquisition))),
        service=Decimal(str(section.get("service", fallback.service))),
    )


def profit_description(settings: Settings) -> str:
    """The profit form in words, as outputs name it (``contribution: revenue x 0.3 - costs``)."""
    if settings.profitability == "revenue_minus_costs":
        return "revenue_minus_costs: lifetime revenue - acquisition and service costs"
    return (
        f"contribution: lifetime revenue x margin {settings.margin} - acquisition and service costs"
    )


_settings: WeakKeyDictionary[CRM, Settings] = WeakKeyDictionary()


def check_settings(settings: Settings) -> None:
    """Raise ConfigError for combinations the JSON Schema cannot express."""
    prefix = f"config: plugins.{PLUGIN_NAME}"
    if settings.high_percent + settings.medium_percent > 100:
        raise ConfigError(f"{prefix}.tiers: high_percent + medium_percent exceeds 100")
    for index, rule in enumerate(settings.segments):
        for name, (low, high) in (("r", rule.r), ("fm", rule.fm)):
            if low > high:
                raise ConfigError(f"{prefix}.segments.{index}.{name}: {low} is above {high}")
    for name, amount in (("margin", settings.margin), ("discount_rate", settings.discount_rate)):
        if amount < 0 or amount != amount.quantize(Decimal("0.0001")):
            raise ConfigError(f"{prefix}.{name}: {amount} must be >= 0 with at most 4 decimals")


@requires(Action.READ, scoped=True)  # configuration, no customer data
def remember_settings(crm: CRM) -> Settings:
    """Read the plugin's section once, when ``crm`` has opened (``crm_startup``).

    Raises ConfigError for inconsistent values (tier shares above 100 %,
    inverted segment ranges, a margin with more than 4 decimals).
    """
    settings = Settings.from_config(crm.plugin_config(PLUGIN_NAME))
    check_settings(settings)
    _settings[crm] = settings
    return settings


@requires(Action.READ, scoped=True)  # configuration, no customer data
def settings_of(crm: CRM) -> Settings:
    """Return the settings ``crm`` opened with."""
    settings = _settings.get(crm)
    return settings if settings is not None else remember_settings(crm)


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
