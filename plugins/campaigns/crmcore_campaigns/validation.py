"""Checks of a campaign definition: one ValidationError naming the field and the value."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from crmcore import ValidationError
from crmcore.checks import bad, currency, integer, money, text
from crmcore_campaigns.assignment import share_in_basis_points
from crmcore_campaigns.audience import normalise
from crmcore_campaigns.settings import Settings

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
FIELDS = frozenset(
    {
        "name",
        "audience",
        "variants",
        "template",
        "channel",
        "control_share",
        "stratify",
        "seed",
        "budget",
        "cost_per_message",
        "currency",
        "margin",
        "attribution_days",
        "send_at",
        "reminder_days",
    }
)


def _decimal(field: str, value: Any) -> Decimal:
    if isinstance(value, float):
        value = str(value)
    return money(field, value)


def _variants(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    given = data.get("variants")
    if given is None:
        template = text("template", data.get("template"), 100, required=True)
        return [{"name": "A", "template": template, "weight": 1, "reminder_template": None}]
    if "template" in data:
        bad("template", "give either template or variants, not both")
    if not isinstance(given, list | tuple) or not given:
        bad("variants", "expected a non-empty list of variants", given)
    variants: list[dict[str, Any]] = []
    for index, raw in enumerate(given):
        where = f"variants[{index}]"
        if not isinstance(raw, Mapping):
            bad(where, "expected a mapping with name and template", raw)
        unknown = set(raw) - {"name", "template", "weight", "reminder_template"}
        if unknown:
            bad(where, f"unknown field {sorted(unknown)[0]!r}")
        name = raw.get("name", chr(ord("A") + index) if index < 26 else f"V{index + 1}")
        if not isinstance(name, str) or not _NAME.match(name):
            bad(f"{where}.name", f"{name!r} is not a variant name (letters, digits, _ . -)", name)
        if name in {v["name"] for v in variants}:
            bad(f"{where}.name", f"{name!r} is repeated", name)
        variants.append(
            {
                "name": name,
                "template": text(f"{where}.template", raw.get("template"), 100, required=True),
                "weight": integer(f"{where}.weight", raw.get("weight", 1), 1, 1000),
                "reminder_template": text(
                    f"{where}.reminder_template", raw.get("reminder_template"), 100
                ),
            }
        )
    return variants


def _moment(field: str, value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            bad(field, f"{value!r} is not an ISO timestamp", value)
    if not isinstance(value, datetime) or value.tzinfo is None:
        bad(field, f"expected a timestamp with a time zone, got {value!r}", value)
    return value


def check_campaign(data: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """The columns of a new campaign from ``data``, defaults from ``settings``."""
    if not isinstance(data, Mapping):
        raise ValidationError("campaign: expected a mapping of fields", field="campaign")
    unknown = set(data) - FIELDS
    if unknown:
        bad(sorted(unknown)[0], "is not a campaign field")
    share = _decimal("control_share", data.get("control_share", settings.control_share))
    try:
        share_in_basis_points(share)
    except ValueError:
        bad("control_share", f"{share} is not in [0, 1) with at most 4 decimals", share)
    budget = data.get("budget")
    seed = data.get("seed")
    reminder = data.get("reminder_days")
    channel = data.get("channel", settings.channel)
    stratify = data.get("stratify", settings.stratify)
    if not isinstance(stratify, bool):
        bad("stratify", f"expected true or false, got {stratify!r}", stratify)
    margin = _decimal("margin", data.get("margin", settings.margin))
    if margin < 0:
        bad("margin", f"{margin} is negative", margin)
    cost = _decimal("cost_per_message", data.get("cost_per_message", settings.cost_per_message))
    if cost < 0:
        bad("cost_per_message", f"{cost} is negative", cost)
    return {
        "name": text("name", data.get("name"), 200, required=True),
        "audience": normalise(data.get("audience")),
        "variants": _variants(data),
        "channel": text("channel", channel, 40),
        "control_share": share,
        "stratify": stratify,
        "seed": None if seed is None else integer("seed", seed, 0, 2**63 - 1),
        "budget": None if budget is None else _decimal("budget", budget),
        "cost_per_message": cost,
        "currency": currency("currency", data.get("currency", settings.currency)),
        "margin": margin,
        "attribution_days": integer(
            "attribution_days", data.get("attribution_days", settings.attribution_days), 1, 3650
        ),
        "send_at": _moment("send_at", data.get("send_at")),
        "reminder_days": None if reminder is None else integer("reminder_days", reminder, 1, 365),
    }


__all__ = ["FIELDS", "check_campaign"]
