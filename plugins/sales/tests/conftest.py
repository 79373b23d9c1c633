"""Fixtures of the sales plugin's tests: a CRM with the plugin, an organisation, a hook recorder."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import crmcore_sales.plugin
import pytest

from crmcore import CRM
from crmcore.hooks import hookimpl


class HookRecorder:
    """A throw-away plugin recording the sales plugin's hook calls."""

    def __init__(self) -> None:
        self.overdue: list[Mapping[str, Any]] = []
        self.renewals: list[Mapping[str, Any]] = []
        self.calls = 0

    @hookimpl(optionalhook=True)
    def sales_instalments_overdue(self, ctx: Any, instalments: Sequence[Mapping[str, Any]]) -> None:
        """Record overdue instalments."""
        self.calls += 1
        self.overdue.extend(instalments)

    @hookimpl(optionalhook=True)
    def sales_contracts_due_for_renewal(
        self, ctx: Any, contracts: Sequence[Mapping[str, Any]]
    ) -> None:
        """Record contracts due for renewal."""
        self.calls += 1
        self.renewals.extend(contracts)


@pytest.fixture
def recorder() -> HookRecorder:
    """A fresh hook recorder."""
    return HookRecorder()


@pytest.fixture
def open_crm(crm_factory: Callable[..., CRM], recorder: HookRecorder) -> Callable[..., CRM]:
    """Open a CRM with the sales plugin (and the recorder) on the test's backend."""

    def factory(section: Mapping[str, Any] | None = None, extra: Sequence[object] = ()) -> CRM:
        return crm_factory(
            plugins=[crmcore_sales.plugin, recorder, *extra],
            plugin_sections={"sales": dict(section or {})},
        )

    return factory


@pytest.fixture
def scrm(open_crm: Callable[..., CRM]) -> CRM:
    """A CRM with the sales plugin and default settings."""
    return open_crm()


@pytest.fixture
def org(scrm: CRM) -> int:
    """An organisation of ``scrm`` with one decision maker as contact."""
    cid = scrm.customers.create({"name": "Acme Ltd", "kind": "organization"}).id
    person = scrm.customers.create({"name": "Li Wei", "email": "li@acme.example"}).id
    assert cid is not None and person is not None
    scrm.accounts.add_contact(cid, person, role="decision_maker", primary=True)
    return cid
