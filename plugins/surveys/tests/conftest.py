"""Fixtures of the surveys plugin's tests: a CRM with the plugin, customers, counting rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import crmcore_surveys.plugin
import pytest
import sqlalchemy as sa

from crmcore import CRM


@pytest.fixture
def scrm(crm_factory: Callable[..., CRM]) -> CRM:
    """A CRM with only the surveys plugin, on each backend."""
    return crm_factory(plugins=[crmcore_surveys.plugin])


@pytest.fixture
def people(scrm: CRM) -> list[int]:
    """Ten customers: even ids consent to surveys, odd ones do not; stages and tags vary."""
    created = scrm.customers.create_many(
        {
            "name": f"Person {i}",
            "email": f"p{i}@example.com",
            "tags": ["vip"] if i % 3 == 0 else [],
            "attributes": {"region": "north" if i < 5 else "south"},
            "consent": {"surveys": i % 2 == 0},
        }
        for i in range(10)
    )
    return [c.id for c in created if c.id is not None]


@pytest.fixture
def count() -> Iterator[Callable[[CRM, str], int]]:
    """``count(crm, table)``: rows in a table."""

    def counter(crm: CRM, table: str) -> int:
        """Counter."""
        with crm.engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())

    yield counter


def snapshot(crm: CRM) -> dict[str, Any]:
    """Row counts of every table a response touches."""
    tables = (
        "surveys_surveys",
        "surveys_questions",
        "surveys_invitations",
        "surveys_responses",
        "surveys_answers",
        "crm_interactions",
    )
    with crm.engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}


@pytest.fixture
def rows_of() -> Callable[[CRM], dict[str, Any]]:
    """``rows_of(crm)``: row counts of the plugin's tables and of core's interactions."""
    return snapshot
