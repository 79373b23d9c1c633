"""Fixtures of the activities plugin's tests: a CRM with the plugin, a reminder recorder."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import crmcore_activities.plugin
import pytest

from crmcore import CRM
from crmcore.hooks import hookimpl


class ReminderRecorder:
    """A throw-away messaging plugin recording ``activities_reminders_due``."""

    def __init__(self) -> None:
        self.reminders: list[Mapping[str, Any]] = []
        self.calls = 0

    @hookimpl(optionalhook=True)
    def activities_reminders_due(self, ctx: Any, reminders: Sequence[Mapping[str, Any]]) -> None:
        """Record the reminders handed over."""
        self.calls += 1
        self.reminders.extend(reminders)


@pytest.fixture
def recorder() -> ReminderRecorder:
    """A fresh reminder recorder."""
    return ReminderRecorder()


SECTION = {
    "timezone": "Europe/Berlin",
    "users": {
        "alice": {"timezone": "Asia/Shanghai", "manager": "olga"},
        "bob": {"timezone": "America/New_York", "manager": "olga"},
    },
}


@pytest.fixture
def open_crm(crm_factory: Callable[..., CRM], recorder: ReminderRecorder) -> Callable[..., CRM]:
    """Open a CRM with the activities plugin (and the recorder) on the test's backend."""

    def factory(section: Mapping[str, Any] | None = None, extra: Sequence[object] = ()) -> CRM:
        return crm_factory(
            plugins=[crmcore_activities.plugin, recorder, *extra],
            plugin_sections={"activities": dict(SECTION if section is None else section)},
        )

    return factory


@pytest.fixture
def acrm(open_crm: Callable[..., CRM]) -> CRM:
    """A CRM with the activities plugin and the test settings."""
    return open_crm()
