"""Fixtures of the loyalty plugin's tests: a CRM with the plugin, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import crmcore_loyalty.plugin
import pytest

from crmcore import CRM

#: The programme the scenario tests use (documented in docs/plugins/loyalty.md).
PROGRAMME: dict[str, Any] = {
    "currency": "EUR",
    "points_per_unit": 1,
    "rounding": "floor",
    "channel_multipliers": {"app": 2},
    "category_multipliers": {"books": 3},
    "birthday_month_multiplier": 2,
    "first_purchase_bonus": 50,
    "referral_bonus": 100,
    "expiry_months": 12,
    "tier_basis": "spend",
    "tier_window_months": 12,
    "tiers": [
        {"name": "member", "threshold": 0},
        {"name": "silver", "threshold": 500, "multiplier": 1.5, "benefits": ["free shipping"]},
        {"name": "gold", "threshold": 2000, "multiplier": 2},
    ],
}


@pytest.fixture
def open_loyalty(crm_factory: Callable[..., CRM]) -> Callable[..., CRM]:
    """Open a CRM with the loyalty plugin (registered in code) and a programme section."""

    def opener(section: dict[str, Any] | None = None, **kwargs: Any) -> CRM:
        return crm_factory(
            plugins=[crmcore_loyalty.plugin, *kwargs.pop("extra_plugins", [])],
            plugin_sections={"loyalty": PROGRAMME if section is None else section},
            **kwargs,
        )

    return opener


@pytest.fixture
def lcrm(open_loyalty: Callable[..., CRM]) -> CRM:
    """A CRM with the loyalty plugin and :data:`PROGRAMME`, on each backend."""
    return open_loyalty()
