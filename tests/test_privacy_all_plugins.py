"""Right to erasure and data portability with every first-party plugin installed.

The demo data of core and of every plugin is loaded, a few customers are given
unmistakable names and contact points, and one with data in as many plugins
as possible is erased: afterwards no table, core's or any plugin's, may hold
its name, email or phone number in any form.
"""

from __future__ import annotations

import io
import json
import re

import sqlalchemy as sa
from rich.console import Console

from crmcore import CRM
from crmcore.io.demo import DEMO_NOW, load_demo, top_customers
from crmcore.testing import FrozenClock

FIRST_PARTY = {"surveys", "loyalty", "complaints", "segmentation", "sales", "activities"}


def all_text(crm: CRM) -> str:
    """Every row of every table in the database, as one lower-case string."""
    chunks = []
    with crm.engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            rows = conn.execute(sa.text(f'SELECT * FROM "{table}"')).all()
            chunks.append(json.dumps([list(r) for r in rows], default=str, ensure_ascii=False))
    return "\n".join(chunks).lower()


def test_erase_leaves_no_trace_in_any_table(db_url: str) -> None:
    crm = CRM.open(db_url, discover=True, upgrade=True, clock=FrozenClock(DEMO_NOW))
    try:
        assert {p.name for p in crm.plugins()} >= FIRST_PARTY
        load_demo(crm, seed=5, customers=80)
        marked = {}
        for n, row in enumerate(top_customers(crm, limit=6)):
            marker = {
                "name": f"Zebulon Quixotic{n} Marker",
                "email": f"zebulon.marker{n}@privacy.example",
                "phone": f"+47 55 0{n}9 8{n}7",
            }
            crm.customers.update(row["id"], {**marker, "consent": {"surveys": True}})
            marked[row["id"]] = marker
        crm.call_hook("crm_demo", crm=crm, seed=5, console=Console(file=io.StringIO()))

        exports = {cid: crm.customers.export(cid) for cid in marked}
        richest = max(
            marked, key=lambda cid: sum(bool(v) for v in exports[cid]["plugins"].values())
        )
        export = exports[richest]
        assert export["customer"]["email"] == marked[richest]["email"]
        covered = {name for name, data in export["plugins"].items() if data}
        assert len(covered & FIRST_PARTY) >= 2, covered  # the portability export spans plugins
        json.dumps(export)  # and is JSON-safe

        before = all_text(crm)
        marker = marked[richest]
        digits = re.sub(r"\D", "", marker["phone"])
        needles = [marker["name"].lower(), marker["email"], marker["phone"].lower(), digits]
        assert any(n in before for n in needles)

        crm.customers.erase(richest, actor="dpo")

        after = all_text(crm)
        for needle in needles:
            assert needle not in after, f"{needle!r} survived the erasure"
        others = [m for cid, m in marked.items() if cid != richest]
        assert all(m["email"] in after for m in others)  # nobody else was touched
        remaining = crm.customers.export(richest)
        assert remaining["customer"]["name"] == f"erased customer {richest}"
    finally:
        crm.close()
