"""Fixtures of the campaigns plugin's tests: a CRM with the plugin, customers, purchases."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import crmcore_campaigns.plugin
import pytest

from crmcore import CRM


@pytest.fixture
def open_crm(crm_factory: Callable[..., CRM]) -> Callable[..., CRM]:
    """Open a CRM with the campaigns plugin (and ``extra`` plugins) on the test's backend."""

    def factory(section: Mapping[str, Any] | None = None, extra: Sequence[object] = ()) -> CRM:
        return crm_factory(
            plugins=[crmcore_campaigns.plugin, *extra],
            plugin_sections={"campaigns": dict(section or {})},
        )

    return factory


@pytest.fixture
def ccrm(open_crm: Callable[..., CRM]) -> CRM:
    """A CRM with the campaigns plugin and default settings."""
    return open_crm()


def _make_customers(crm: CRM, n: int, **fields: Any) -> list[int]:
    """Create ``n`` customers (names ``c0``...) with ``fields``; return their ids."""
    created = crm.customers.create_many([{"name": f"c{i}", **fields} for i in range(n)])
    return [int(c.id) for c in created if c.id is not None]


def _purchase(crm: CRM, customer_id: int, at: datetime, amount: str, currency: str = "EUR") -> None:
    """Record one purchase of ``amount`` at ``at``."""
    crm.interactions.record(
        {
            "customer_id": customer_id,
            "kind": "purchase",
            "channel": "web",
            "occurred_at": at,
            "amount": Decimal(amount),
            "currency": currency,
        }
    )


@pytest.fixture
def make_customers() -> Callable[..., list[int]]:
    """``make_customers(crm, n, **fields)``: create customers, return their ids."""
    return _make_customers


@pytest.fixture
def purchase() -> Callable[..., None]:
    """``purchase(crm, customer_id, at, amount, currency="EUR")``: record a purchase."""
    return _purchase
