"""Issue 17, findings 4, 5, 6 (phones) and 8 (exports): hostile input is refused or shown inertly.

Each test runs on SQLite and PostgreSQL and failed before the fix.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from crmcore import CRM, ConflictError, NotFoundError, ValidationError
from crmcore.cli import build_cli
from crmcore.config import Config
from crmcore.errors import ConfigError
from crmcore.io.exports import export_customers, export_interactions
from crmcore.io.imports import import_customers, import_interactions
from crmcore.model.limits import JsonLimits
from crmcore.pytest_plugin import CRMFactory
from crmcore.storage.tables import customers as customers_table

AT = "2025-06-01T10:00:00+00:00"


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def purchase(**fields: Any) -> dict[str, Any]:
    return {"customer_id": 1, "kind": "purchase", "amount": "5", "currency": "EUR",
            "occurred_at": AT, **fields}  # fmt: skip


# ---- finding 4: JSON nesting and size -------------------------------------------------------


@pytest.mark.parametrize("depth", [33, 330, 5000])
def test_deep_attributes_refused_on_every_write_path(crm: CRM, depth: int) -> None:
    crm.customers.create({"name": "Ada"})
    deep = {"x": nested(depth)}
    for write in (
        lambda: crm.customers.create({"name": "Deep", "attributes": deep}),
        lambda: crm.customers.create_many([{"name": "Deep", "attributes": deep}]),
        lambda: crm.customers.update(1, {"attributes": deep}),
    ):
        with pytest.raises(ValidationError) as caught:
            write()
        assert "attributes" in str(caught.value) and "nested more than 32" in str(caught.value)
    assert crm.customers.search().total == 1
    assert crm.customers.get(1).attributes == {}


@pytest.mark.parametrize("depth", [33, 330, 5000])
def test_deep_payload_refused_on_record_and_record_many(crm: CRM, depth: int) -> None:
    crm.customers.create({"name": "Ada"})
    for write in (
        lambda: crm.interactions.record(purchase(payload={"p": nested(depth)})),
        lambda: crm.interactions.record_many([purchase(payload={"p": nested(depth)})]),
    ):
        with pytest.raises(ValidationError, match="payload: nested more than 32 levels"):
            write()
    assert crm.interactions.list().total == 0


def test_depth_32_is_accepted_and_reads_back(crm: CRM) -> None:
    document = nested(31)  # 31 objects inside the attributes object: depth 32
    created = crm.customers.create({"name": "Ada", "attributes": document})
    assert created.id is not None
    assert crm.customers.get(created.id).attributes == document


def test_size_limits_attributes_payload_and_items(crm: CRM) -> None:
    crm.customers.create({"name": "Ada"})
    with pytest.raises(ValidationError, match=r"attributes: \d+ bytes of JSON, more than .* 65536"):
        crm.customers.create({"name": "Big", "attributes": {"blob": "x" * 70_000}})
    with pytest.raises(ValidationError, match=r"payload: .* bytes of JSON"):
        crm.interactions.record(purchase(payload={"blob": "é" * 40_000}))
    items = [{"sku": f"sku-{i}", "name": "n" * 100} for i in range(600)]
    with pytest.raises(ValidationError, match=r"items: .* bytes of JSON"):
        crm.interactions.record(purchase(items=items))
    assert crm.interactions.record(purchase(items=items[:50])).id is not None


def test_limits_come_from_config(crm_factory: CRMFactory) -> None:
    crm = crm_factory(json_limits=JsonLimits(max_depth=3, max_bytes=200))
    crm.customers.create({"name": "Ada", "attributes": {"a": {"b": 1}}})
    with pytest.raises(ValidationError, match="nested more than 3 levels"):
        crm.customers.create({"name": "Bob", "attributes": {"a": {"b": {"c": {"d": 1}}}}})
    with pytest.raises(ValidationError, match="more than the limit of 200"):
        crm.customers.create({"name": "Cy", "attributes": {"a": "x" * 300}})


def test_limits_section_of_crm_toml() -> None:
    config = Config.from_mapping({"limits": {"json_max_depth": 8, "json_max_bytes": 4096}})
    assert config.json_limits == JsonLimits(8, 4096)
    assert Config.from_mapping({}).json_limits == JsonLimits(32, 65536)
    with pytest.raises(ConfigError, match=r"limits\.json_max_depth"):
        Config.from_mapping({"limits": {"json_max_depth": 0}})
    with pytest.raises(ConfigError, match="limits"):
        Config.from_mapping({"limits": {"json_depth": 8}})


def test_deep_document_stored_earlier_still_reads_back(crm: CRM, tmp_path: Path) -> None:
    """A document stored before the limit (here by raw SQL) must not crash reads or exports."""
    created = crm.customers.create({"name": "Old"})
    with crm.engine.begin() as conn:
        conn.execute(
            sa.update(customers_table)
            .where(customers_table.c.id == created.id)
            .values(attributes=nested(900))
        )
    assert created.id is not None
    profile = crm.customers.profile(created.id)
    assert json.dumps(profile, default=str).count('{"a"') == 900
    assert crm.customers.export(created.id)["customer"]["attributes"] == nested(900)
    assert [c.id for c in crm.customers.iter_all()] == [created.id]
    out = io.StringIO()
    assert export_customers(crm, out, format="jsonl") == 1
    assert export_customers(crm, io.StringIO()) == 1


def test_import_of_deep_json_rejects_the_row(crm: CRM, tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    rows = [{"name": "Deep", "attributes": nested(40)}, {"name": "Fine", "attributes": {"a": 1}}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    result = import_customers(crm, path, skip_invalid=True)
    assert (result.imported, result.rejected) == (1, 1)
    with pytest.raises(ValidationError, match="attributes: nested more than 32"):
        import_customers(crm, path)


# ---- finding 4: output escaping -------------------------------------------------------------


@pytest.fixture
def cli(db_url: str) -> Any:
    runner = CliRunner()
    group = build_cli()

    def invoke(*args: str) -> Result:
        return runner.invoke(group, ["--db", db_url, *args], env={"COLUMNS": "400"})

    assert invoke("init").exit_code == 0
    return invoke


HOSTILE_NAMES = [
    "[/]",
    "[link=https://evil.example]Acme Support[/link]",
    "[bold red]loud[/]",
    "Eve\x1b[2J\x1b]8;;https://evil.example\x07click\x1b]8;;\x07 \x9b31m \u202eevil",
]


def test_markup_and_escapes_in_names_are_shown_literally(cli: Any) -> None:
    for name in HOSTILE_NAMES:
        assert cli("customers", "add", "--name", name).exit_code == 0
    for args in (("customers", "list"), ("customers", "show", "1"), ("customers", "show", "2")):
        result = cli(*args)
        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output
        for bad in ("\x1b", "\x9b", "\u202e", "\x07"):
            assert bad not in result.output
    listed = cli("customers", "list").output
    assert "[/]" in listed and "[link=https://evil.example]" in listed.replace("\n", "")
    assert "[bold red]" in cli("customers", "show", "3").output
    shown = cli("customers", "show", "4").output
    assert "Eve" in shown and "click" in shown


def test_json_output_is_exact_and_terminal_safe(cli: Any) -> None:
    name = HOSTILE_NAMES[3]
    assert cli("customers", "add", "--name", name).exit_code == 0
    result = cli("customers", "list", "--json")
    assert not any(ch in result.output for ch in ("\x1b", "\x9b", "\u202e", "\x07"))
    assert json.loads(result.output)["items"][0]["name"] == name


def test_errors_are_one_line_without_control_characters(cli: Any) -> None:
    result = cli("customers", "add", "--name", "x", "--email", "a\x1b[2J\nb")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: email")
    assert "\x1b" not in result.output


def test_safe_text_helper() -> None:
    from crmcore.cli.output import safe_json, safe_line, safe_text

    assert safe_text("[/]") == "\\[/]"
    assert safe_text("a\x1b[31mb\x1b]8;;http://x\x07c\x1b\\d\u202e\x00") == "abcd"
    assert safe_text("tab\tand\nnewline") == "tab\tand\nnewline"
    assert safe_line("one\ntwo\x1b[1m") == "one two"
    assert json.loads(safe_json({"k": "\x9b\u202e\x1b"})) == {"k": "\x9b\u202e\x1b"}
    assert safe_text(None) == "" and safe_text(12) == "12"


# ---- finding 4: CSV formula injection -------------------------------------------------------


FORMULAS = ['=HYPERLINK("https://evil.example")', "+1+1", "-2+3", "@SUM(A1)", "'=kept"]


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_exports_neutralise_formula_cells(crm: CRM, tmp_path: Path) -> None:
    crm.customers.create_many([{"name": n, "owner": n, "address": "\tcmd"} for n in FORMULAS])
    crm.interactions.record({"customer_id": 1, "kind": "purchase", "amount": "5.00",
                             "currency": "EUR", "occurred_at": AT, "text": "=1+1"})  # fmt: skip
    out = io.StringIO()
    export_customers(crm, out)
    rows = _csv(out.getvalue())
    assert [r["name"] for r in rows] == ["'" + n for n in FORMULAS]
    assert rows[0]["owner"] == "'" + FORMULAS[0] and rows[0]["id"] == "1"
    assert rows[0]["address"] == "'\tcmd"
    raw = io.StringIO()
    export_customers(crm, raw, raw_cells=True)
    assert [r["name"] for r in _csv(raw.getvalue())] == FORMULAS
    out = io.StringIO()
    export_interactions(crm, out)
    (row,) = _csv(out.getvalue())
    assert row["text"] == "'=1+1" and row["amount"] == "5" and row["customer_id"] == "1"
    # The importers undo the neutralisation: an export imports again unchanged.
    path = tmp_path / "export.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        export_customers(crm, handle)
    other = CRM.open(f"sqlite:///{tmp_path / 'again.db'}", discover=False, upgrade=True)
    try:
        import_customers(other, path)
        assert [c.name for c in other.customers.iter_all()] == FORMULAS
    finally:
        other.close()


def test_cli_export_raw_cells_option(cli: Any) -> None:
    assert cli("customers", "add", "--name", "=1+1").exit_code == 0
    assert "\n1,'=1+1," in cli("customers", "export").output
    assert "\n1,=1+1," in cli("customers", "export", "--raw-cells").output


def test_exports_on_stdout_cannot_drive_the_terminal(cli: Any, tmp_path: Path) -> None:
    name = "Eve\x1b[2J\x9b31m\u202e"
    assert cli("customers", "add", "--name", name).exit_code == 0
    shown = cli("customers", "export").output
    assert "Eve" in shown and not any(c in shown for c in ("\x1b", "\x9b", "\u202e"))
    lines = cli("customers", "export", "--format", "jsonl").output
    assert not any(c in lines for c in ("\x1b", "\x9b", "\u202e"))
    assert json.loads(lines)["name"] == name
    target = tmp_path / "all.csv"
    assert cli("customers", "export", "-o", str(target)).exit_code == 0
    assert name in target.read_text(encoding="utf-8")


# ---- finding 5: integer and date ranges, ASCII numbers ----------------------------------------


def test_size_out_of_integer_range_is_one_validation_error(crm: CRM, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"^size: 3000000000 is out of range"):
        crm.customers.create({"name": "Big", "kind": "organization", "size": 3_000_000_000})
    assert crm.customers.create({"name": "Ok", "kind": "organization", "size": 2**31 - 1}).size
    path = tmp_path / "orgs.csv"
    path.write_text("name,kind,size\nHuge,organization,3000000000\nSmall,organization,12\n")
    result = import_customers(crm, path, skip_invalid=True)
    assert (result.imported, result.rejected) == (1, 1)
    assert crm.customers.search().total == 2


def wide(text: str) -> str:
    """``text`` in full-width forms (digits, +, punctuation; space as U+3000)."""
    return "".join("\u3000" if c == " " else chr(ord(c) + 0xFEE0) for c in text)


@pytest.mark.parametrize("amount", ["\u0661\u0662\u0663", wide("123"), "1_000", wide("1.5")])
def test_amounts_accept_ascii_digits_only(crm: CRM, amount: str, tmp_path: Path) -> None:
    crm.customers.create({"name": "Ada"})
    with pytest.raises(ValidationError, match=r"amount: .*ASCII digits only"):
        crm.interactions.record(purchase(amount=amount))
    with pytest.raises(ValidationError, match="registered_capital"):
        crm.customers.create({"name": "Org", "kind": "organization", "registered_capital": amount})
    with pytest.raises(ValidationError, match="size"):
        crm.customers.create({"name": "Org", "kind": "organization", "size": amount})
    path = tmp_path / "rows.csv"
    path.write_text(
        f"customer_id,kind,amount,currency,occurred_at\n1,purchase,{amount},EUR,{AT}\n",
        encoding="utf-8",
    )
    with pytest.raises(ValidationError, match="amount"):
        import_interactions(crm, path)
    assert crm.interactions.list().total == 0
    assert crm.interactions.record(purchase(amount="1000.50")).amount is not None


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-05:00"])
def test_timestamps_outside_the_utc_range_are_refused(crm: CRM, at: str) -> None:
    crm.customers.create({"name": "Ada"})
    with pytest.raises(ValidationError, match=r"occurred_at: .* out of range"):
        crm.interactions.record(purchase(occurred_at=at))
    recorded = crm.interactions.record(purchase(occurred_at="0001-01-01T00:00:00+00:00"))
    assert recorded.occurred_at.year == 1


def test_cli_huge_id_and_extreme_report_period_are_one_line(cli: Any) -> None:
    for args, fragment in (
        (("customers", "show", "9223372036854775808"), "CUSTOMER_ID: 9223372036854775808"),
        (("customers", "list", "--limit", "99999999999999999999"), "--limit"),
        (("report", "--from", "0001-01-01", "--to", "9999-12-31"), "--from"),
        (("interactions", "list", "--since", "0001-01-01T00:00:00+05:00"), "--since"),
    ):
        result = cli(*args)
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0]


# ---- finding 6 (part): full-width phone digits ------------------------------------------------


def test_full_width_phone_digits_are_folded(crm: CRM) -> None:
    created = crm.customers.create({"name": "Wang", "phone": wide("+86 138 0013 8000")})
    assert created.phone == "+86 138 0013 8000"
    with pytest.raises(ConflictError):
        crm.customers.create({"name": "Wang 2", "phone": "+8613800138000"})
    assert crm.customers.search(phone="+86 138 0013 8000").total == 1
    assert crm.customers.search(phone=wide("+8613800138000")).total == 1


# ---- finding 8 (part): export -o and access ----------------------------------------------------


def test_denied_export_leaves_the_output_file_intact(cli: Any, tmp_path: Path) -> None:
    assert cli("customers", "add", "--name", "Ada", "--owner", "bob").exit_code == 0
    target = tmp_path / "out.csv"
    target.write_text("precious\n")
    for what in ("customers", "interactions"):
        result = cli("--user", "bob", "--role", "agent", what, "export", "-o", str(target))
        assert result.exit_code == 1 and "Error: " in result.output
        assert target.read_text() == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []
    assert cli("customers", "export", "-o", str(target)).exit_code == 0
    assert target.read_text().startswith("id,name,")


def test_denied_interactions_export_prints_nothing(cli: Any) -> None:
    runner_result = cli("--user", "bob", "--role", "agent", "interactions", "export")
    assert runner_result.exit_code == 1
    assert runner_result.stdout == ""
    assert runner_result.stderr.startswith("Error: ")


# ---- listings: any --limit, streamed ------------------------------------------------------------


def test_listing_limit_beyond_one_page_with_json(cli: Any, db_url: str) -> None:
    with CRM.open(db_url) as crm:
        crm.customers.create_many({"name": f"c{i}"} for i in range(1203))
    listed = json.loads(cli("customers", "list", "--json", "--limit", "1100").output)
    assert listed["total"] == 1203 and len(listed["items"]) == 1100
    assert [i["id"] for i in listed["items"][:2]] == [1, 2]
    rest = json.loads(
        cli("customers", "list", "--json", "--limit", "5000", "--offset", "1200").output
    )
    assert [i["name"] for i in rest["items"]] == ["c1200", "c1201", "c1202"]
    table = cli("customers", "list", "--limit", "1001").output
    assert "1-1001 of 1203" in table
    audit = json.loads(cli("audit", "--json", "--limit", "2").output)
    assert len(audit["items"]) == 2


def test_ids_beyond_64_bits_are_not_found_on_both_backends(crm: CRM) -> None:
    """The Python API refuses huge ids the same way on SQLite and PostgreSQL (no driver error)."""
    huge = 2**63
    for call in (
        lambda: crm.customers.get(huge),
        lambda: crm.customers.update(huge, {"name": "x"}),
        lambda: crm.interactions.timeline(huge),
        lambda: crm.lifecycle.history(huge),
        lambda: crm.lifecycle.move(huge, "new"),
        lambda: crm.customers.delete(huge),
    ):
        with pytest.raises(NotFoundError, match="customer 9223372036854775808 does not exist"):
            call()
    assert crm.customers.exists([huge, 2**70, -1]) == set()
    with pytest.raises(
        ValidationError, match="customer_id: 1180591620717411303424 is out of range"
    ):
        crm.interactions.list(customer_id=2**70)
