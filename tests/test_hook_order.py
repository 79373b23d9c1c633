"""Collected hooks (metrics, profile, export, charts ...) run through pluggy's call loop.

The order is the one docs/hooks.md states: ``tryfirst`` implementations,
then the others most recently registered first, then ``trylast`` ones;
wrappers (``wrapper=True``) see the answers, and hook-call monitoring sees
the call.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, datetime
from typing import Any

import pytest

from crmcore import CRM
from crmcore.errors import PluginError
from crmcore.hooks import hookimpl
from crmcore.model.signals import Period

PERIOD = Period(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))


class Metric:
    """A plugin answering crm_metrics and crm_customer_profile with its own name."""

    def __init__(self, name: str) -> None:
        self.crm_plugin_name = name

    @hookimpl
    def crm_metrics(self, period: Period) -> dict[str, Any]:
        return {"plugin": self.crm_plugin_name}

    @hookimpl
    def crm_customer_profile(self) -> dict[str, Any]:
        return {"section": self.crm_plugin_name}


class First(Metric):
    @hookimpl(tryfirst=True)
    def crm_metrics(self, period: Period) -> dict[str, Any]:
        return {"plugin": self.crm_plugin_name}


class Last(Metric):
    @hookimpl(trylast=True)
    def crm_metrics(self, period: Period) -> dict[str, Any]:
        return {"plugin": self.crm_plugin_name}


class Silent:
    crm_plugin_name = "silent"

    @hookimpl
    def crm_metrics(self, period: Period) -> None:
        return None


class Wrapper:
    """A new-style wrapper: sees every answer, marks each in place, returns the list."""

    crm_plugin_name = "wrapper"

    def __init__(self) -> None:
        self.seen: list[Any] = []

    @hookimpl(wrapper=True)
    def crm_metrics(self, period: Period) -> Generator[None, list[Any], list[Any]]:
        answers = yield
        self.seen = [a["plugin"] for a in answers]
        for answer in answers:
            answer["wrapped"] = 1
        return answers


class OldWrapper:
    """An old-style hookwrapper that drops the ``early`` answer."""

    crm_plugin_name = "oldwrapper"

    @hookimpl(hookwrapper=True)
    def crm_metrics(self, period: Period) -> Generator[None, Any, None]:
        outcome = yield
        outcome.force_result([a for a in outcome.get_result() if a["plugin"] != "early"])


def test_collected_answers_follow_pluggys_order_through_wrappers(sqlite_url: str) -> None:
    wrapper = Wrapper()
    calls: list[str] = []
    # Registration order: last, first, early, silent, late (then the wrapper).
    plugins = [Last("last"), First("first"), Metric("early"), Silent(), Metric("late"), wrapper]
    with CRM.open(sqlite_url, discover=False, upgrade=True, plugins=plugins) as crm:
        crm.pm.add_hookcall_monitoring(lambda name, impls, kw: calls.append(name), lambda *a: None)
        metrics = crm.metrics(PERIOD)
    # tryfirst, then the most recently registered first, then trylast; None left out.
    assert list(metrics) == ["core", "first", "late", "early", "last"]
    assert wrapper.seen == ["first", "late", "early", "last"]
    assert metrics["late"] == {"plugin": "late", "wrapped": 1}  # no generator leaked
    assert calls == ["crm_metrics"]  # monitoring sees the one call


def test_an_old_style_hookwrapper_may_filter_the_answers(sqlite_url: str) -> None:
    plugins = [Metric("early"), Metric("late"), OldWrapper()]
    with CRM.open(sqlite_url, discover=False, upgrade=True, plugins=plugins) as crm:
        assert list(crm.metrics(PERIOD)) == ["core", "late"]


def test_profile_sections_in_the_same_order(sqlite_url: str) -> None:
    plugins = [Metric("a"), Metric("b"), Metric("c")]
    with CRM.open(sqlite_url, discover=False, upgrade=True, plugins=plugins) as crm:
        cid = crm.customers.create({"name": "Ann"}).id
        assert cid is not None
        sections = crm.customers.profile(cid)["plugins"]
    assert list(sections) == ["c", "b", "a"]
    assert sections["b"] == {"section": "b"}


class Boom:
    crm_plugin_name = "boom"

    @hookimpl
    def crm_metrics(self, period: Period) -> dict[str, Any]:
        raise ZeroDivisionError("division by zero")


def test_a_failing_plugin_is_named_with_the_hook(sqlite_url: str) -> None:
    plugins = [Metric("fine"), Boom()]
    with (
        CRM.open(sqlite_url, discover=False, upgrade=True, plugins=plugins) as crm,
        pytest.raises(PluginError) as info,
    ):
        crm.metrics(PERIOD)
    assert str(info.value) == (
        "plugin 'boom' failed in crm_metrics: ZeroDivisionError: division by zero"
    )
    assert (info.value.plugin, info.value.hook) == ("boom", "crm_metrics")


def test_an_event_hook_failure_names_the_plugin(sqlite_url: str) -> None:
    class Refuses:
        crm_plugin_name = "refuses"

        @hookimpl
        def crm_customers_created(self) -> None:
            raise RuntimeError("no")

    with CRM.open(sqlite_url, discover=False, upgrade=True, plugins=[Refuses()]) as crm:
        with pytest.raises(PluginError, match=r"^plugin 'refuses' failed in crm_customers_created"):
            crm.customers.create({"name": "Ann"})
        assert crm.customers.search().total == 0
