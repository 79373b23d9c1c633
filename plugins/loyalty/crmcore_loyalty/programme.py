"""The programme definition: ``[plugins.loyalty]`` in crm.toml, its schema and its rules.

Everything here is pure (no database): the earn rule that turns a purchase
into points, the tier ladder, the expiry policy. :func:`settings_of` gives
the validated programme of a CRM.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any
from weakref import WeakKeyDictionary

from attrs import field, frozen

from crmcore import CRM, ConfigError, ValidationError

#: The name the plugin registers under: its config section, profile and metrics key.
PLUGIN_NAME = "loyalty"

_MULTIPLIERS: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": {"type": "number", "minimum": 0},
}

#: JSON Schema of ``[plugins.loyalty]`` in crm.toml (defaults in :class:`Programme`).
CONFIG_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "points_per_unit": {"type": "number", "exclusiveMinimum": 0},
        "rounding": {"enum": ["floor", "ceiling", "half_up", "half_even"]},
        "channel_multipliers": _MULTIPLIERS,
        "category_multipliers": _MULTIPLIERS,
        "birthday_month_multiplier": {"type": "number", "minimum": 0},
        "first_purchase_bonus": {"type": "integer", "minimum": 0},
        "referral_bonus": {"type": "integer", "minimum": 0},
        "expiry_months": {"type": "integer", "minimum": 0, "maximum": 1200},
        "point_value": {"type": "number", "minimum": 0},
        "expiring_soon_days": {"type": "integer", "minimum": 1},
        "tier_basis": {"enum": ["spend", "points"]},
        "tier_window_months": {"type": "integer", "minimum": 1, "maximum": 1200},
        "tiers": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "threshold"],
                "properties": {
                    "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,60}$"},
                    "threshold": {"type": "number", "minimum": 0},
                    "multiplier": {"type": "number", "minimum": 0},
                    "benefits": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}

_ROUNDING = {
    "floor": ROUND_FLOOR,
    "ceiling": ROUND_CEILING,
    "half_up": ROUND_HALF_UP,
    "half_even": ROUND_HALF_EVEN,
}


def _decimal(value: Any) -> Decimal:
    """A config number as an exact Decimal (``1.1`` stays 1.1, not its binary float)."""
    return Decimal(str(value))


@frozen
class Tier:
    """One rung of the tier ladder: reached when the qualifying value is >= ``threshold``."""

    name: str
    threshold: Decimal
    multiplier: Decimal = Decimal(1)
    benefits: tuple[str, ...] = ()


DEFAULT_TIERS = (
    Tier("member", Decimal(0), Decimal(1), ("member prices",)),
    Tier("silver", Decimal(500), Decimal("1.25"), ("free shipping",)),
    Tier("gold", Decimal(2000), Decimal("1.5"), ("free shipping", "priority support")),
)


def _sorted_tiers(tiers: Iterable[Tier]) -> tuple[Tier, ...]:
    return tuple(sorted(tiers, key=lambda t: t.threshold))


@frozen
class Programme:
    """The validated programme definition (``[plugins.loyalty]``); defaults as documented."""

    currency: str = "EUR"
    points_per_unit: Decimal = Decimal(1)
    rounding: str = "floor"
    channel_multipliers: Mapping[str, Decimal] = field(factory=dict)
    category_multipliers: Mapping[str, Decimal] = field(factory=dict)
    birthday_month_multiplier: Decimal = Decimal(1)
    first_purchase_bonus: int = 0
    referral_bonus: int = 0
    expiry_months: int = 12
    point_value: Decimal = Decimal("0.01")
    expiring_soon_days: int = 30
    tier_basis: str = "spend"
    tier_window_months: int = 12
    tiers: tuple[Tier, ...] = field(default=DEFAULT_TIERS, converter=_sorted_tiers)

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> Programme:
        """Build the programme from a section validated against :data:`CONFIG_SCHEMA`.

        Raises ConfigError for what the schema cannot express (duplicate tier names).
        """
        values: dict[str, Any] = {}
        for name in ("currency", "rounding", "tier_basis"):
            if name in section:
                values[name] = section[name]
        for name in (
            "first_purchase_bonus",
            "referral_bonus",
            "expiry_months",
            "expiring_soon_days",
            "tier_window_months",
        ):
            if name in section:
                values[name] = int(section[name])
        for name in ("points_per_unit", "birthday_month_multiplier", "point_value"):
            if name in section:
                values[name] = _decimal(section[name])
        for name in ("channel_multipliers", "category_multipliers"):
            if name in section:
                values[name] = {str(k): _decimal(v) for k, v in section[name].items()}
        if "tiers" in section:
            tiers = [
                Tier(
                    name=t["name"],
                    threshold=_decimal(t["threshold"]),
                    multiplier=_decimal(t.get("multiplier", 1)),
                    benefits=tuple(t.get("benefits", ())),
                )
                for t in section["tiers"]
            ]
            names = [t.name for t in tiers]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ConfigError(
                    f"config: plugins.{PLUGIN_NAME}.tiers: tier {duplicates[0]!r} is defined twice"
                )
            values["tiers"] = tuple(tiers)
        return cls(**values)

    # --- tiers ---------------------------------------------------------------

    def tier(self, name: str | None) -> Tier | None:
        """The tier called ``name`` (``None`` when no such tier is defined)."""
        return next((t for t in self.tiers if t.name == name), None)

    def tier_for(self, qualifying: Decimal) -> Tier | None:
        """The highest tier whose threshold ``qualifying`` reaches (``None``: below every tier)."""
        reached = [t for t in self.tiers if t.threshold <= qualifying]
        return reached[-1] if reached else None

    def entry_tier(self) -> Tier | None:
        """The tier a new member starts in: the one with threshold 0, if defined."""
        return self.tier_for(Decimal(0))

    def tier_rank(self, name: str | None) -> int:
        """Position of a tier on the ladder (-1 for none or an undefined tier)."""
        for index, tier in enumerate(self.tiers):
            if tier.name == name:
                return index
        return -1

    # --- earning ---------------------------------------------------------------

    def round_points(self, raw: Decimal) -> int:
        """Round raw points to an integer with the programme's rounding mode."""
        return int(raw.quantize(Decimal(1), rounding=_ROUNDING[self.rounding]))

    def category_weighted_amount(self, amount: Decimal, items: Sequence[Any]) -> Decimal:
        """The purchase amount with each item's category multiplier applied.

        Items with a ``unit_price`` weigh ``quantity * unit_price`` (scaled down
        proportionally when they add up to more than ``amount``, i.e. an order
        discount); what the priced items do not explain weighs 1. Without any
        priced item, the whole amount takes the highest multiplier among the
        items' categories (1 when none has a configured category).
        """
        multipliers = self.category_multipliers

        def factor(item: Any) -> Decimal:
            category = getattr(item, "category", None)
            return multipliers.get(category, Decimal(1)) if category else Decimal(1)

        priced = [i for i in items if getattr(i, "unit_price", None) is not None]
        if not priced:
            return amount * max((factor(i) for i in items), default=Decimal(1))
        total = sum((i.quantity * i.unit_price for i in priced), Decimal(0))
        scale = amount / total if total > amount else Decimal(1)
        weighted = sum((i.quantity * i.unit_price * scale * factor(i) for i in priced), Decimal(0))
        return weighted + max(Decimal(0), amount - total)

    def purchase_points(
        self,
        amount: Decimal,
        *,
        channel: str,
        items: Sequence[Any] = (),
        tier: str | None = None,
        birthday_month: bool = False,
    ) -> int:
        """Points a purchase earns (bonuses excluded).

        ``round(category_weighted_amount * points_per_unit * channel multiplier
        * tier multiplier * birthday multiplier)`` with the programme's rounding,
        every factor an exact Decimal.
        """
        raw = self.category_weighted_amount(amount, items) * self.points_per_unit
        raw *= self.channel_multipliers.get(channel, Decimal(1))
        current = self.tier(tier)
        if current is not None:
            raw *= current.multiplier
        if birthday_month:
            raw *= self.birthday_month_multiplier
        return self.round_points(raw)

    # --- expiry ----------------------------------------------------------------

    def expiry_for(self, earned_at: datetime) -> datetime | None:
        """When points earned at ``earned_at`` expire (``None``: never, ``expiry_months = 0``)."""
        return add_months(earned_at, self.expiry_months) if self.expiry_months else None


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus calendar months, the day clamped to the month's end (Jan 31 + 1 = Feb 28)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    if not 1 <= year <= 9999:
        raise ValidationError(
            f"{moment.isoformat()} {months:+d} months is outside the years 1 to 9999",
            value=moment,
        )
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


_programmes: WeakKeyDictionary[CRM, Programme] = WeakKeyDictionary()


def remember_programme(crm: CRM) -> Programme:
    """Read and keep ``crm``'s programme (called from ``crm_startup``); ConfigError if invalid."""
    programme = Programme.from_config(crm.plugin_config(PLUGIN_NAME))
    _programmes[crm] = programme
    return programme


def settings_of(crm: CRM) -> Programme:
    """The programme ``crm`` opened with."""
    programme = _programmes.get(crm)
    return programme if programme is not None else remember_programme(crm)
