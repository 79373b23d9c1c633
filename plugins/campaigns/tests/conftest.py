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


#: The messaging section of the integration tests: an email channel writing to a folder.
MESSAGING: Mapping[str, Any] = {
    "base_url": "https://crm.example.com/crm",
    "default_channel": "email",
    "caps": [],
}


@pytest.fixture
def open_mcrm(crm_factory: Callable[..., CRM], tmp_path: Any) -> Callable[..., CRM]:
    """Open a CRM with campaigns and messaging (email through a folder channel)."""
    import crmcore_messaging.plugin

    def factory(
        section: Mapping[str, Any] | None = None, messaging: Mapping[str, Any] | None = None
    ) -> CRM:
        given = {
            **MESSAGING,
            "channels": {
                "email": {
                    "type": "folder",
                    "consent": "marketing_email",
                    "path": str(tmp_path / "outbox"),
                }
            },
            **(messaging or {}),
        }
        return crm_factory(
            plugins=[crmcore_messaging.plugin, crmcore_campaigns.plugin],
            plugin_sections={"campaigns": dict(section or {}), "messaging": given},
        )

    return factory


@pytest.fixture
def mcrm(open_mcrm: Callable[..., CRM]) -> CRM:
    """A CRM with campaigns and messaging, a campaign template ``winback`` and ``reminder``."""
    from crmcore_messaging.templates import save_template

    crm = open_mcrm()
    save_template(
        crm,
        "winback",
        locale="en",
        subject="We miss you",
        text="Hello {{ customer.name }}, come back: {{ link('https://shop.example/back') }}",
    )
    save_template(crm, "reminder", locale="en", subject="Still there?", text="Last chance.")
    save_template(crm, "winback_b", locale="en", subject="10% off", text="Ten percent off.")
    return crm


def _reachable(crm: CRM, n: int) -> list[int]:
    created = crm.customers.create_many(
        [
            {
                "name": f"r{i}",
                "email": f"r{i}@example.com",
                "consent": {"marketing_email": True},
                "attributes": {},
            }
            for i in range(n)
        ]
    )
    return [int(c.id) for c in created if c.id is not None]


@pytest.fixture
def reachable() -> Callable[[CRM, int], list[int]]:
    """``reachable(crm, n)``: customers with an email who consented to marketing email."""
    return _reachable
