"""Fixtures of the complaints plugin's tests: a CRM with the plugin, customers, a hook recorder."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import crmcore_complaints.plugin
import pytest
from crmcore_complaints import ComplaintService

from crmcore import CRM
from crmcore.hooks import hookimpl


class HookRecorder:
    """A throw-away plugin recording the complaints plugin's hook calls."""

    def __init__(self) -> None:
        self.breaches: list[Mapping[str, Any]] = []
        self.compensations: list[Mapping[str, Any]] = []
        self.breach_calls = 0
        self.progress: list[Mapping[str, Any]] = []

    @hookimpl(optionalhook=True)
    def complaints_sla_breached(self, ctx: Any, breaches: Sequence[Mapping[str, Any]]) -> None:
        """Record breaches."""
        self.breach_calls += 1
        self.breaches.extend(breaches)

    @hookimpl(optionalhook=True)
    def complaints_compensation_issued(
        self, ctx: Any, compensations: Sequence[Mapping[str, Any]]
    ) -> None:
        """Record compensation."""
        self.compensations.extend(compensations)

    @hookimpl(optionalhook=True)
    def complaints_progress(self, ctx: Any, updates: Sequence[Mapping[str, Any]]) -> None:
        """Record progress notifications."""
        self.progress.extend(updates)


@pytest.fixture
def recorder() -> HookRecorder:
    """A fresh hook recorder."""
    return HookRecorder()


@pytest.fixture
def open_crm(crm_factory: Callable[..., CRM], recorder: HookRecorder) -> Callable[..., CRM]:
    """Open a CRM with the complaints plugin (and the recorder) on the test's backend."""

    def factory(section: Mapping[str, Any] | None = None, extra: Sequence[object] = ()) -> CRM:
        return crm_factory(
            plugins=[crmcore_complaints.plugin, recorder, *extra],
            plugin_sections={"complaints": dict(section or {})},
        )

    return factory


@pytest.fixture
def ccrm(open_crm: Callable[..., CRM]) -> CRM:
    """A CRM with the complaints plugin and default settings."""
    return open_crm()


@pytest.fixture
def service(ccrm: CRM) -> ComplaintService:
    """The complaint service of ``ccrm``."""
    return ComplaintService(ccrm)


@pytest.fixture
def customer(ccrm: CRM) -> int:
    """One customer of ``ccrm``."""
    cid = ccrm.customers.create({"name": "Ada Lovelace", "email": "ada@example.com"}).id
    assert cid is not None
    return cid
