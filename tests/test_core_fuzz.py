"""Malformed input through the API and the importers: refused or stored verbatim, never a crash.

Every example runs against a database holding a few known customers; after
each one, those rows must be exactly as they were (nothing corrupted), and a
failure must be a CRMError (a clear refusal), never any other exception.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore import CRM, CRMError, Customer, CustomerChange, to_dict
from crmcore.io.imports import import_customers, import_interactions

INJECTIONS = [
    "'; DROP TABLE crm_customers; --",
    '" OR 1=1 --',
    "Robert'); DELETE FROM crm_interactions;--",
    "%_%",
    "\\",
    "${jndi:ldap://x}",
    "<script>alert(1)</script>",
    "\x00",
    "\ud800",
    "null",
    "　",
    "🙂" * 50,
]
strings = st.one_of(
    st.sampled_from(INJECTIONS),
    st.text(max_size=30),
    st.text(min_size=300, max_size=5000),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
)
scalars = st.one_of(
    strings, st.integers(), st.floats(allow_nan=True), st.booleans(), st.none(),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(strings, inner, max_size=3),
    max_leaves=6,
)
FIELDS = [
    "name", "kind", "email", "phone", "address", "gender", "birth_date", "company_name",
    "industry", "size", "registered_capital", "founding_date", "owner", "stage",
    "source_channel", "tags", "attributes", "consent", "created_at", "id",
]  # fmt: skip
customer_dicts = st.dictionaries(
    st.one_of(st.sampled_from(FIELDS), strings), values, max_size=8
) | st.fixed_dictionaries({"name": strings}, optional={f: values for f in FIELDS[1:]})
interaction_dicts = st.fixed_dictionaries(
    {},
    optional={
        "customer_id": st.one_of(st.integers(), strings, st.sampled_from([1, 2])),
        "kind": st.one_of(st.sampled_from(["purchase", "call", "refund"]), strings),
        "occurred_at": st.one_of(st.sampled_from(["2026-01-01T00:00:00+00:00"]), strings),
        "amount": values,
        "currency": st.one_of(st.sampled_from(["EUR", "eur"]), strings),
        "text": strings,
        "payload": values,
        "items": values,
        "response_seconds": values,
    },
)

FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def snapshot(crm: CRM) -> list[Customer]:
    return [c for c in crm.customers.iter_all() if c.id in (1, 2)]


def seeded(crm: CRM) -> list[Customer]:
    crm.customers.create_many(
        [
            {"name": "Ada Lovelace", "email": "ada@x.org", "tags": ["vip"], "attributes": {"k": 1}},
            {"name": "Bob", "phone": "+44 20 7946 0958", "kind": "organization"},
        ]
    )
    crm.interactions.record(
        {"customer_id": 1, "kind": "purchase", "amount": "9.99", "currency": "EUR",
         "occurred_at": "2025-01-01T00:00:00+00:00"}
    )  # fmt: skip
    return snapshot(crm)


def attempt(action: Any) -> object:
    try:
        return action()
    except CRMError:
        return None


def test_fuzz_customers_api(crm: CRM) -> None:
    before = seeded(crm)

    @FUZZ
    @given(data=customer_dicts)
    def run(data: dict[str, Any]) -> None:
        created = attempt(lambda: crm.customers.create(data))
        assert snapshot(crm) == before
        if isinstance(created, Customer):
            assert created.id is not None
            stored = crm.customers.get(created.id)
            assert stored == created  # what came back is what is stored
            assert stored.name == data["name"].strip()  # verbatim, but for outer blanks
            for field in ("address", "industry", "owner", "company_name"):
                assert getattr(stored, field) == data.get(field)
            if "attributes" in data:
                assert stored.attributes == data["attributes"]
            crm.customers.delete(created.id)

    run()


def test_fuzz_customer_updates(crm: CRM) -> None:
    before = seeded(crm)

    def comparable(customers: list[Customer]) -> list[dict[str, Any]]:
        return [{**to_dict(c), "updated_at": None} for c in customers]

    @FUZZ
    @given(changes=customer_dicts)
    def run(changes: dict[str, Any]) -> None:
        result = attempt(lambda: crm.customers.update(2, changes))
        if result is None:
            assert snapshot(crm) == before
            return
        assert isinstance(result, CustomerChange)
        stored = crm.customers.get(2)
        assert stored == result.after
        for field in ("address", "industry", "owner", "company_name"):
            if field in changes:
                assert getattr(stored, field) == changes[field]
        original = to_dict(before[1])
        if result.changed:
            crm.customers.update(2, {f: original[f] for f in result.changed})
        assert comparable(snapshot(crm)) == comparable(before)

    run()


def test_fuzz_interactions_api(crm: CRM) -> None:
    before = seeded(crm)
    count = crm.interactions.list().total

    @FUZZ
    @given(data=interaction_dicts)
    def run(data: dict[str, Any]) -> None:
        nonlocal count
        recorded = attempt(lambda: crm.interactions.record(data))
        if recorded is not None:
            count += 1
            assert recorded.text == data.get("text")  # type: ignore[attr-defined]
            assert recorded.payload == data.get("payload", {})  # type: ignore[attr-defined]
        assert crm.interactions.list().total == count
        assert snapshot(crm)[0].id == before[0].id

    run()


def test_fuzz_imports(crm: CRM, tmp_path: Path) -> None:
    before = seeded(crm)
    rows = st.lists(st.lists(strings, min_size=1, max_size=6), min_size=1, max_size=8)
    columns = ["name", "email", "phone", "tags", "attributes.x", "kind", "size"]
    header = st.lists(st.sampled_from(columns), min_size=1, max_size=5, unique=True)

    @FUZZ
    @given(header=header, rows=rows, raw=st.binary(max_size=200), skip=st.booleans())
    def run(header: list[str], rows: list[list[str]], raw: bytes, skip: bool) -> None:
        path = tmp_path / "fuzz.csv"
        with path.open("w", encoding="utf-8", errors="surrogatepass", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            writer.writerows(rows)
        with path.open("ab") as out:
            out.write(raw)
        total_before = crm.customers.search().total
        result = attempt(lambda: import_customers(crm, path, skip_invalid=skip))
        if result is None:
            assert crm.customers.search().total == total_before  # all or nothing
        else:
            stored = crm.customers.search().total - total_before
            assert stored == result.imported  # type: ignore[attr-defined]
        jsonl = tmp_path / "fuzz.jsonl"
        jsonl.write_bytes(b"\n".join([json.dumps(r).encode() for r in rows] + [raw]))
        attempt(lambda: import_interactions(crm, jsonl, skip_invalid=skip))
        assert snapshot(crm) == before

    run()
