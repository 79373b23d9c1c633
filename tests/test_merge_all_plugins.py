"""Issue 11 item 4: a merge with every first-party plugin installed moves everything, loses nothing.

The demo data of core and every plugin is loaded; the two customers with data
in the most plugins are merged. Afterwards no row of any table refers to the
duplicate, and the sums a merge must preserve (interactions, loyalty points,
complaints, survey responses, deals and payments) are those of both customers before.
"""

from __future__ import annotations

import io
from typing import Any

import sqlalchemy as sa
from rich.console import Console

from crmcore import CRM
from crmcore.io.demo import DEMO_NOW, load_demo, top_customers
from crmcore.testing import FrozenClock

FIRST_PARTY = {
    "surveys",
    "loyalty",
    "complaints",
    "segmentation",
    "sales",
    "activities",
    "messaging",
    "campaigns",
}


def _customer_columns(crm: CRM) -> list[tuple[sa.Table, sa.Column[Any]]]:
    """Every (table, column) in the database holding a foreign key to ``crm_customers.id``.

    Only tables that exist: other tests may define tables on the shared MetaData.
    """
    existing = set(sa.inspect(crm.engine).get_table_names())
    found = []
    for table in crm.metadata.sorted_tables:
        if table.name not in existing:
            continue
        for column in table.columns:
            if any(fk.column.table.name == "crm_customers" for fk in column.foreign_keys):
                found.append((table, column))
    return found


def _count(crm: CRM, table: sa.Table, condition: Any) -> int:
    with crm.engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(table).where(condition)
            ).scalar_one()
        )


def _sum(crm: CRM, table_name: str, column: str, customer_ids: list[int]) -> Any:
    table = crm.metadata.tables[table_name]
    with crm.engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(table.c[column]), 0)).where(
                table.c.customer_id.in_(customer_ids)
            )
        ).scalar_one()


PRESERVED = {
    "crm_interactions": None,
    "loyalty_ledger": "points",
    "complaints_cases": None,
    "surveys_responses": None,
    "surveys_invitations": None,
    "sales_deals": None,
    "sales_payments": "amount",
    "activities_activities": None,
    "messaging_messages": None,
}


def test_merge_across_every_plugin_leaves_no_orphan_and_keeps_the_sums(db_url: str) -> None:
    crm = CRM.open(db_url, discover=True, upgrade=True, clock=FrozenClock(DEMO_NOW))
    try:
        assert {p.name for p in crm.plugins()} >= FIRST_PARTY
        load_demo(crm, seed=7, customers=80)
        crm.call_hook("crm_demo", crm=crm, seed=7, console=Console(file=io.StringIO()))
        ids = [row["id"] for row in top_customers(crm, limit=12)]
        richness = {
            cid: sum(bool(v) for v in crm.customers.export(cid)["plugins"].values()) for cid in ids
        }
        keep, dup = sorted(ids, key=lambda cid: -richness[cid])[:2]
        assert richness[keep] >= 2 and richness[dup] >= 2, richness
        before: dict[str, Any] = {}
        for name, column in PRESERVED.items():
            table = crm.metadata.tables[name]
            both = table.c.customer_id.in_([keep, dup])
            before[name] = (
                _count(crm, table, both) if column is None else _sum(crm, name, column, [keep, dup])
            )
        assert before["crm_interactions"] > 0 and before["loyalty_ledger"] != 0
        assert before["messaging_messages"] > 0  # invitations, campaign messages
        balance_rows = _count(crm, crm.metadata.tables["loyalty_ledger"], sa.true())

        crm.customers.merge(keep, dup, actor="ops")

        for table, column in _customer_columns(crm):
            assert _count(crm, table, column == dup) == 0, f"{table.name}.{column.name}"
        for name, column in PRESERVED.items():
            table = crm.metadata.tables[name]
            after = (
                _count(crm, table, table.c.customer_id == keep)
                if column is None
                else _sum(crm, name, column, [keep])
            )
            assert after == before[name], name
        assert _count(crm, crm.metadata.tables["loyalty_ledger"], sa.true()) == balance_rows
        profile = crm.customers.profile(keep)
        assert profile["interaction_count"] == before["crm_interactions"]
        assert crm.customers.get(dup).id == keep
    finally:
        crm.close()
