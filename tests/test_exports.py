"""Tests of crmcore.io.exports, including export -> import round trips onto a fresh database."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from crmcore import CRM, NotFoundError, ValidationError, to_dict
from crmcore.io import exports as exports_module
from crmcore.io.exports import (
    CUSTOMER_CSV_COLUMNS,
    INTERACTION_CSV_COLUMNS,
    export_customers,
    export_interactions,
)
from crmcore.io.imports import import_customers, import_interactions
from crmcore.testing import FrozenClock


@pytest.fixture
def fresh_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A second, empty database on the same backend as ``db_url``."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    match = re.search(r"search_path%3D(\w+)", db_url)
    assert match is not None
    schema, other = match.group(1), f"{match.group(1)}_fresh"
    engine = sa.create_engine(db_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {other}"))
    try:
        yield db_url.replace(schema, other)
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {other} CASCADE"))
        engine.dispose()


def populate(crm: CRM) -> None:
    ada = crm.customers.create(
        {
            "name": "Ada Lovelace", "email": "ada@example.com", "phone": "+44 20 7946 0001",
            "address": "12 St James's Square\nLondon, \"West End\"", "birth_date": "1815-12-10",
            "gender": "female", "owner": "sam", "source_channel": "web",
            "tags": ["vip", "early"], "consent": {"marketing_email": True, "surveys": True},
            "attributes": {"tier": "gold", "score": 7, "flags": {"beta": True}},
        }
    )  # fmt: skip
    acme = crm.customers.create(
        {
            "name": "Acme Ltd", "kind": "organization", "company_name": "Acme", "industry": "tools",
            "size": 120, "registered_capital": "250000.50", "founding_date": "1990-01-01",
        }
    )  # fmt: skip
    crm.customers.create({"name": "Grace Hopper", "attributes": {}})
    assert ada.id is not None and acme.id is not None
    crm.interactions.record_many(
        [
            {"customer_id": ada.id, "kind": "purchase", "channel": "web", "amount": "19.9900",
             "currency": "EUR", "occurred_at": "2025-06-01T10:00:00+02:00",
             "items": [{"sku": "A1", "quantity": "2", "unit_price": "9.995", "name": "Pen"}],
             "payload": {"order": "X1", "lines": [1, 2]}},
            {"customer_id": ada.id, "kind": "call", "channel": "phone", "direction": "outbound",
             "occurred_at": "2025-06-02T09:00:00+00:00", "text": "Called,\nabout \"delivery\"",
             "handled_by": "sam", "response_seconds": 12.25},
            {"customer_id": acme.id, "kind": "inquiry", "channel": "email",
             "occurred_at": "2025-06-03T09:00:00+00:00"},
        ]
    )  # fmt: skip


def snapshot(crm: CRM) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    people = [to_dict(c) for c in crm.customers.iter_all()]
    buffer = io.StringIO()
    export_interactions(crm, buffer, format="jsonl")
    return people, [json.loads(line) for line in buffer.getvalue().splitlines()]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_then_import_round_trips_on_a_fresh_database(
    crm: CRM, fresh_url: str, clock: FrozenClock, tmp_path: Path, fmt: str
) -> None:
    populate(crm)
    customers_file = tmp_path / f"customers.{fmt}"
    interactions_file = tmp_path / f"interactions.{fmt}"
    with customers_file.open("w", encoding="utf-8", newline="") as out:
        assert export_customers(crm, out, format=fmt) == 3
    with interactions_file.open("w", encoding="utf-8", newline="") as out:
        assert export_interactions(crm, out, format=fmt) == 3

    clock.advance(days=30)  # stored timestamps must come from the files, not the clock
    with CRM.open(fresh_url, discover=False, upgrade=True, clock=clock) as fresh:
        assert import_customers(fresh, customers_file).imported == 3
        # dedupe=False: a restore keeps the interactions exactly (no derived external ids).
        assert import_interactions(fresh, interactions_file, dedupe=False).imported == 3
        assert snapshot(fresh) == snapshot(crm)


def test_customer_csv_columns(crm: CRM) -> None:
    populate(crm)
    out = io.StringIO()
    export_customers(crm, out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == CUSTOMER_CSV_COLUMNS
    ada = rows[0]
    assert ada["tags"] == "early;vip"
    assert ada["consent.marketing_email"] == "true" and ada["consent.marketing_sms"] == "false"
    assert json.loads(ada["attributes"]) == {"tier": "gold", "score": 7, "flags": {"beta": True}}
    assert rows[2]["attributes"] == "" and rows[2]["email"] == ""
    assert "consent" not in CUSTOMER_CSV_COLUMNS and "attributes" in CUSTOMER_CSV_COLUMNS


def test_interaction_export_for_one_customer_pages_through_ids(
    crm: CRM, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(crm)
    monkeypatch.setattr(exports_module, "_PAGE", 1)  # force several keyset pages
    ada_id = crm.customers.search(email="ada@example.com").items[0].id
    assert ada_id is not None
    out = io.StringIO()
    assert export_interactions(crm, out, customer_id=ada_id) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == INTERACTION_CSV_COLUMNS
    assert [r["kind"] for r in rows] == ["purchase", "call"]
    assert json.loads(rows[0]["payload"]) == {"order": "X1", "lines": [1, 2]}
    assert rows[1]["text"] == 'Called,\nabout "delivery"' and rows[1]["items"] == ""
    all_out = io.StringIO()
    assert export_interactions(crm, all_out, format="jsonl") == 3


def test_export_errors(crm: CRM) -> None:
    with pytest.raises(NotFoundError, match="customer 12345 does not exist"):
        export_interactions(crm, io.StringIO(), customer_id=12345)
    with pytest.raises(ValidationError, match="format: 'xml' is not one of"):
        export_customers(crm, io.StringIO(), format="xml")


def test_empty_database_exports_a_header_only(crm: CRM) -> None:
    out = io.StringIO()
    assert export_customers(crm, out) == 0
    assert out.getvalue() == ",".join(CUSTOMER_CSV_COLUMNS) + "\n"
