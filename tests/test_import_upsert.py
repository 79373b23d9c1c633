"""Issue 11, item 7: customer imports that update what they find (--update-existing --match)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from crmcore import CRM, ConflictError, ValidationError
from crmcore.access import Principal, Role
from crmcore.cli import build_cli
from crmcore.hooks import hookimpl
from crmcore.io.imports import import_customers
from crmcore.model.entities import Customer, CustomerChange
from crmcore.pytest_plugin import CRMFactory
from crmcore.storage.tables import audit_log, events

N = 240
HEADER = ["name", "email", "phone", "industry", "tags", "stage", "external_id"]


def rows(n: int = N) -> list[dict[str, str]]:
    return [
        {
            "name": f"Customer {i}",
            "email": f"c{i}@upsert.example",
            "phone": f"+86 139 {i // 10000:04d} {i % 10000:04d}",
            "industry": "retail" if i % 2 else "",
            "tags": "vip" if i % 5 == 0 else "",
            "stage": "active",
            "external_id": f"C-{i:05d}",
        }
        for i in range(n)
    ]


def write(path: Path, data: list[dict[str, str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(data)
    return path


def corrected(data: list[dict[str, str]]) -> list[dict[str, str]]:
    """The same rows, some fixed: 30 industries, 10 phones (other form), 5 tag sets."""
    fixed = [{**r, "stage": "churned"} for r in data]  # the stage column is not an update
    for i in range(0, 60, 2):
        fixed[i]["industry"] = "wholesale"
    for i in range(100, 110):
        fixed[i]["phone"] = f"+86 138 0000 {i:04d}"
    for i in range(200, 205):
        fixed[i]["tags"] = "vip;renewed"
    fixed[150]["phone"] = fixed[150]["phone"].replace(" ", "-")  # same number, other form
    return fixed


def count(crm: CRM, table: Any, **where: str) -> int:
    query = select(func.count()).select_from(table)
    for name, value in where.items():
        query = query.where(table.c[name] == value)
    with crm.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


class UpdateCounter:
    """Counts the changes ``crm_customers_updated`` reports."""

    def __init__(self) -> None:
        self.changes: list[CustomerChange] = []

    @hookimpl
    def crm_customers_updated(self, ctx: Any, changes: list[CustomerChange]) -> None:
        self.changes.extend(changes)


@pytest.mark.parametrize("batch_size", [500, 37])
def test_reimporting_a_corrected_file_updates_instead_of_rejecting(
    crm_factory: CRMFactory, tmp_path: Path, batch_size: int
) -> None:
    counter = UpdateCounter()
    crm = crm_factory(plugins=[counter])
    original = write(tmp_path / "customers.csv", rows())
    first = import_customers(crm, original, system="erp", batch_size=batch_size)
    assert (first.imported, first.updated, first.unchanged) == (N, 0, 0)
    fixed = write(tmp_path / "fixed.csv", corrected(rows()))

    plain = import_customers(crm, fixed, system="erp", skip_invalid=True, batch_size=batch_size)
    assert (plain.imported, plain.rejected) == (0, N)
    assert plain.rejects_path is not None
    reasons = [r["_error"] for r in csv.DictReader(plain.rejects_path.open(encoding="utf-8"))]
    assert reasons[0] == (
        "duplicate customer: email 'c0@upsert.example' already belongs to customer 1 "
        "(to update it instead, import with --update-existing --match email)"
    )
    assert all("--update-existing" in r for r in reasons)

    audits, emitted = count(crm, audit_log), count(crm, events)
    result = import_customers(
        crm, fixed, system="erp", update_existing=True, match="email", batch_size=batch_size
    )
    assert (result.created, result.updated, result.unchanged, result.rejected) == (0, 46, 194, 0)
    assert result.rejects_path is None
    assert len(counter.changes) == 46
    assert count(crm, audit_log) - audits == 46
    assert count(crm, audit_log, action="customer.update") == 46
    by_email = {c.email: c for c in crm.customers.iter_all()}
    assert len(by_email) == N
    assert by_email["c0@upsert.example"].industry == "wholesale"
    assert by_email["c1@upsert.example"].industry == "retail"  # unchanged row
    assert by_email["c2@upsert.example"].industry == "wholesale"
    assert by_email["c4@upsert.example"].industry == "wholesale"  # was empty: set
    assert by_email["c100@upsert.example"].phone == "+86 138 0000 0100"
    assert crm.customers.search(phone="+8613800000105").items[0].email == "c105@upsert.example"
    assert by_email["c200@upsert.example"].tags == ("renewed", "vip")
    assert by_email["c201@upsert.example"].tags == ("renewed", "vip")  # tags replace
    assert all(c.stage.value == "active" for c in by_email.values())  # stage never moves
    changed = {tuple(c.changed) for c in counter.changes}
    assert changed == {("industry",), ("phone",), ("tags",)}
    updated_events = [e for e in crm.events.iter(type="customer.updated")]
    assert len(updated_events) == 46
    assert {e.customer_id for e in updated_events} == {c.after.id for c in counter.changes}

    audits, emitted = count(crm, audit_log), count(crm, events)
    again = import_customers(crm, fixed, system="erp", update_existing=True, match="email")
    assert (again.created, again.updated, again.unchanged, again.rejected) == (0, 0, N, 0)
    assert (count(crm, audit_log), count(crm, events)) == (audits, emitted)
    assert len(counter.changes) == 46


def test_match_by_phone_and_external_id_after_normalisation(crm: CRM, tmp_path: Path) -> None:
    crm.customers.create_many(
        [
            {"name": "Li Wei", "phone": "+86 139 0000 0001", "external_ids": {"erp": "C-1"}},
            {"name": "Wang Fang", "email": "wf@x.org", "external_ids": {"erp": "C-2"}},
        ]
    )
    by_phone = write(
        tmp_path / "phones.csv",
        [
            {"name": "Li Wei", "phone": "0086 139-0000-0001", "industry": "telecom"},
            {"name": "Zhang San", "phone": "+86 139 0000 0003"},
        ],
        ["name", "phone", "industry"],
    )
    result = import_customers(crm, by_phone, update_existing=True, match="phone")
    assert (result.created, result.updated, result.unchanged) == (1, 1, 0)
    assert crm.customers.get(1).industry == "telecom"
    assert crm.customers.get(1).phone == "0086 139-0000-0001"

    by_id = write(
        tmp_path / "erp.csv",
        [
            {"name": "Wang Fang", "email": "fang.wang@x.org", "external_id": "C-2"},
            {"name": "Li Wei", "external_id": "C-1"},
            {"name": "New One", "email": "new@x.org", "external_id": "C-9"},
        ],
        ["name", "email", "external_id"],
    )
    result = import_customers(crm, by_id, update_existing=True, match="external_id", system="erp")
    assert (result.created, result.updated, result.unchanged) == (1, 1, 1)
    assert crm.customers.get_by_external_id("erp", "C-2").email == "fang.wang@x.org"
    created = crm.customers.get_by_external_id("erp", "C-9")
    assert created.email == "new@x.org" and created.id == 4

    by_email = write(
        tmp_path / "shop.csv",
        [{"name": "Wang Fang", "email": "FANG.WANG@x.org ", "external_id": "S-7"}],
        ["name", "email", "external_id"],
    )
    result = import_customers(crm, by_email, update_existing=True, match="email", system="shop")
    assert (result.created, result.updated) == (0, 1)
    assert crm.customers.external_ids(2) == {"erp": ["C-2"], "shop": ["S-7"]}


def test_a_row_matching_two_customers_or_taking_a_key_is_rejected(crm: CRM, tmp_path: Path) -> None:
    a = {"name": "A", "email": "a@x.org", "phone": "+86 139 0000 0001"}
    b = {"name": "B", "email": "b@x.org", "phone": "+86 139 0000 0002"}
    crm.customers.create_many(
        [{**a, "external_ids": {"erp": "E-1"}}, {**b, "external_ids": {"erp": "E-2"}}]
    )
    path = write(
        tmp_path / "clash.csv",
        [
            {"name": "A", "email": "a@x.org", "phone": "+86 139 0000 0002"},  # B's phone
            {"name": "B", "email": "b@x.org", "external_id": "E-1"},  # A's external id
            {"name": "C", "email": "c@x.org", "phone": "+8613900000001"},  # new, A's phone
        ],
        ["name", "email", "phone", "external_id"],
    )
    result = import_customers(
        crm, path, update_existing=True, match="email", system="erp", skip_invalid=True
    )
    assert (result.created, result.updated, result.unchanged, result.rejected) == (0, 0, 0, 3)
    assert result.rejects_path is not None
    reasons = [r["_error"] for r in csv.DictReader(result.rejects_path.open(encoding="utf-8"))]
    assert reasons[0] == (
        "the row's email matches customer 1 but its phone '+8613900000002' belongs to customer 2"
    )
    assert reasons[1] == "external_id: erp 'E-1' already belongs to customer 1"
    assert reasons[2].startswith("duplicate customer: phone '+8613900000001' already belongs to")
    assert reasons[2].endswith("(the row's email matches no customer, so nothing was updated)")
    assert crm.customers.get(1).phone == "+86 139 0000 0001"
    assert crm.customers.external_ids(2) == {"erp": ["E-2"]}
    with pytest.raises(ConflictError, match=r"clash.csv:2: the row's email matches customer 1"):
        import_customers(crm, path, update_existing=True, match="email", system="erp")
    same_phone = write(
        tmp_path / "same.csv",
        [
            {"name": "A", "email": "a@x.org", "phone": "+86 139 0000 0009"},
            {"name": "B", "email": "b@x.org", "phone": "+8613900000009"},
        ],
        ["name", "email", "phone"],
    )
    result = import_customers(
        crm, same_phone, update_existing=True, match="email", skip_invalid=True
    )
    assert (result.updated, result.rejected) == (1, 1)
    reason = Path(str(result.rejects_path)).read_text(encoding="utf-8")
    assert "phone '+8613900000009' is also used by the row at line 2 in the same batch" in reason


class AgentsImport:
    """Agents may import (the default policy keeps imports for managers)."""

    @hookimpl
    def crm_authorize(
        self, crm: CRM, principal: Principal, action: str, customer: Customer | None
    ) -> bool | None:
        return True if action == "import" else None


def test_an_agent_updates_only_customers_they_may_write(
    crm_factory: CRMFactory, tmp_path: Path
) -> None:
    crm = crm_factory(plugins=[AgentsImport()])
    crm.customers.create_many(
        [
            {"name": "Alice's", "email": "mine@x.org", "owner": "alice"},
            {"name": "Granted", "email": "granted@x.org", "owner": "carol"},
            {"name": "Secret Bob", "email": "bob@x.org", "owner": "bob", "phone": "+8613900000009"},
        ]
    )
    crm.access.grant(2, "alice")
    path = write(
        tmp_path / "agent.csv",
        [
            {"name": "Alice's", "email": "mine@x.org", "industry": "a"},
            {"name": "Granted", "email": "granted@x.org", "industry": "b"},
            {"name": "Stolen", "email": "bob@x.org", "industry": "c"},
            {"name": "Fresh", "email": "fresh@x.org", "industry": "d"},
            {"name": "Other", "email": "other@x.org", "phone": "+8613900000009"},
        ],
        ["name", "email", "phone", "industry"],
    )
    alice = crm.as_user(Principal("alice", Role.AGENT))
    result = import_customers(alice, path, update_existing=True, match="email", skip_invalid=True)
    assert (result.created, result.updated, result.rejected) == (1, 2, 2)
    assert result.rejects_path is not None
    text = result.rejects_path.read_text(encoding="utf-8")
    assert "email 'bob@x.org' belongs to a customer you may not see" in text
    assert "phone '+8613900000009' already belongs to a customer you may not see" in text
    assert "customer 3" not in text and "Secret Bob" not in text
    assert crm.customers.get(3).industry is None and crm.customers.get(3).name == "Secret Bob"
    assert [crm.customers.get(i).industry for i in (1, 2)] == ["a", "b"]
    assert crm.customers.get(4).owner == "alice"  # an agent's new customer is theirs
    assert count(crm, audit_log, actor="alice", action="customer.update") == 2

    takeover = write(tmp_path / "owner.csv", [{"email": "mine@x.org", "name": "A", "owner": "bob"}],
                     ["name", "email", "owner"])  # fmt: skip
    refused = import_customers(
        alice, takeover, update_existing=True, match="email", skip_invalid=True
    )
    assert (refused.updated, refused.rejected) == (0, 1)
    assert crm.customers.get(1).owner == "alice"


def test_bad_paths_are_refused_with_the_field(crm: CRM, tmp_path: Path) -> None:
    crm.customers.create({"name": "A", "email": "a@x.org", "industry": "old"})
    path = write(tmp_path / "c.csv", [{"name": "A", "email": "a@x.org", "industry": "new"}],
                 ["name", "email", "industry"])  # fmt: skip
    for kwargs, message in [
        ({"update_existing": True, "match": "name"}, "match: 'name' is not one of: email, phone"),
        ({"update_existing": True}, "match: give the key that finds existing customers"),
        ({"match": "email"}, "match: only with update_existing"),
        ({"update_existing": True, "match": "external_id"}, "system: give the system"),
        ({"system": "bad system!"}, "system: 'bad system!' is not a system name"),
        ({"update_existing": True, "match": "phone"}, "c.csv:1: phone: the match column is not"),
    ]:
        with pytest.raises(ValidationError, match=message):
            import_customers(crm, path, **kwargs)
    ids = write(tmp_path / "ids.csv", [{"name": "A", "external_id": "1"}], ["name", "external_id"])
    with pytest.raises(ValidationError, match="external_id: give the system these ids belong to"):
        import_customers(crm, ids)
    assert crm.customers.get(1).industry == "old"

    twice = write(
        tmp_path / "twice.csv",
        [
            {"name": "A", "email": "a@x.org", "industry": "first"},
            {"name": "A", "email": "A@X.org", "industry": "second"},
            {"name": "N", "email": "n@x.org", "industry": "x"},
            {"name": "N", "email": "n@x.org", "industry": "y"},
        ],
        ["name", "email", "industry"],
    )
    with pytest.raises(ConflictError, match=r"twice.csv:3: email 'A@X.org': an earlier row"):
        import_customers(crm, twice, update_existing=True, match="email")
    assert crm.customers.get(1).industry == "old"  # the whole import rolled back
    dry = import_customers(
        crm, twice, update_existing=True, match="email", skip_invalid=True, dry_run=True
    )
    assert (dry.created, dry.updated, dry.rejected, dry.dry_run) == (1, 1, 2, True)
    assert crm.customers.get(1).industry == "old" and crm.customers.search().total == 1
    done = import_customers(crm, twice, update_existing=True, match="email", skip_invalid=True,
                            batch_size=1, commit_every=2)  # fmt: skip
    assert (done.created, done.updated, done.rejected) == (1, 1, 2)
    assert crm.customers.get(1).industry == "first"
    assert done.rejects_path is not None
    assert "the row at line" not in done.rejects_path.read_text()
    new_id = crm.customers.search(email="n@x.org").items[0].id
    assert f"created customer {new_id}; give each customer one row" in done.rejects_path.read_text()

    bad = write(tmp_path / "bad.csv", [{"name": "A", "email": "a@x.org", "size": "-5"},
                                       {"name": "A", "email": "not-an-email", "size": "1"}],
                ["name", "email", "size"])  # fmt: skip
    result = import_customers(crm, bad, update_existing=True, match="email", skip_invalid=True)
    assert (result.updated, result.rejected) == (0, 2)
    reasons = [
        r["_error"] for r in csv.DictReader(io.StringIO(Path(str(result.rejects_path)).read_text()))
    ]
    assert sorted(reasons) == [  # a batch's unmatchable rows are found first
        "email: not a valid email address: 'not-an-email'",
        "size: must not be negative, got -5",
    ]


def test_jsonl_null_clears_and_unknown_keys_are_refused(crm: CRM, tmp_path: Path) -> None:
    crm.customers.create({"name": "A", "email": "a@x.org", "industry": "old", "address": "x"})
    crm.customers.create({"name": "B", "email": "b@x.org"})
    path = tmp_path / "c.jsonl"
    path.write_text(
        json.dumps({"name": "A", "email": "a@x.org", "industry": None, "stage": "churned"}) + "\n"
        + json.dumps({"name": "B2", "email": "b@x.org", "shoe_size": 44}) + "\n"
        + json.dumps({"email": "b@x.org", "external_ids": ["erp", "1"]}) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    result = import_customers(crm, path, update_existing=True, match="email", skip_invalid=True)
    assert (result.updated, result.rejected) == (1, 2)
    stored = crm.customers.get(1)
    assert (stored.industry, stored.address, stored.stage.value) == (None, "x", "prospect")
    rejects = Path(str(result.rejects_path)).read_text()
    assert "shoe_size: not a customer field" in rejects
    assert "external_ids: expected an object of system -> id, got list" in rejects


def cli(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(build_cli(), ["--db", db_url, *args], catch_exceptions=False)


def test_cli_reports_created_updated_unchanged_rejected(db_url: str, tmp_path: Path) -> None:
    assert cli(db_url, "init").exit_code == 0
    data = rows(5)
    path = write(tmp_path / "c.csv", data)
    assert (
        "Imported 5 customers."
        in cli(db_url, "customers", "import", str(path), "--system", "erp").output
    )
    data[0]["industry"] = "fixed"
    data.append({"name": "New", "email": "new@x.org"})
    data.append({"name": "Bad", "email": "bad"})
    write(path, data)
    args = ["customers", "import", str(path), "--update-existing", "--match", "external_id",
            "--system", "erp", "--skip-invalid"]  # fmt: skip
    out = cli(db_url, *args).output
    assert "Imported 1 customers, updated 1, 4 unchanged. Rejected 1" in out
    report = json.loads(cli(db_url, *args, "--json", "--dry-run").output)
    assert (report["imported"], report["updated"], report["unchanged"]) == (0, 0, 5)
    assert report["rejected"] == 2  # the new row's email is now taken; the bad one again
    refused = cli(db_url, "customers", "import", str(path), "--update-existing", "--match", "id")
    assert refused.exit_code == 2 and "Invalid value for '--match'" in refused.output
    missing = cli(db_url, "customers", "import", str(path), "--update-existing")
    assert missing.exit_code == 1 and "match: give the key" in missing.output


def test_matching_finds_every_stored_form_of_the_key(
    crm_factory: CRMFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crmcore.security.encryption import KEY_ENV, OLD_KEYS_ENV, new_key

    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(OLD_KEYS_ENV, raising=False)
    crm_factory().customers.create({"name": "Plain", "email": "plain@x.org"})  # before encryption
    monkeypatch.setenv(KEY_ENV, new_key())
    crm = crm_factory()
    assert crm.cipher is not None
    crm.customers.create_many(
        [
            {"name": "Sealed", "email": "sealed@x.org", "phone": "+86 139 0000 0001"},
            {"name": "Other", "email": "other@x.org", "phone": "+86 139 0000 0002"},
        ]
    )
    path = write(
        tmp_path / "sealed.csv",
        [
            {"name": "Plain", "email": "PLAIN@x.org", "industry": "a"},
            {"name": "Sealed", "email": "sealed@x.org", "industry": "b"},
            {"name": "Sealed", "email": "other@x.org", "phone": "+86 139 0000 0001"},
        ],
        ["name", "email", "phone", "industry"],
    )
    result = import_customers(crm, path, update_existing=True, match="email", skip_invalid=True)
    assert (result.created, result.updated, result.rejected) == (0, 2, 1)
    assert [crm.customers.get(i).industry for i in (1, 2)] == ["a", "b"]
    reason = Path(str(result.rejects_path)).read_text(encoding="utf-8")
    assert "matches customer 3 but its phone '+8613900000001' belongs to customer 2" in reason
    by_phone = write(tmp_path / "p.csv", [{"name": "Other", "phone": "0086 13900000002"}],
                     ["name", "phone"])  # fmt: skip
    result = import_customers(crm, by_phone, update_existing=True, match="phone")
    assert (result.created, result.unchanged, result.updated) == (0, 0, 1)  # the phone's form
