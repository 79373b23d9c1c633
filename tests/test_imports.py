"""Tests of crmcore.io.imports: CSV and JSON Lines import of customers and interactions."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from crmcore import CRM, Config, ConflictError, NotFoundError, Stage, ValidationError
from crmcore.io.imports import ImportResult, import_customers, import_interactions
from crmcore.testing import FrozenClock

CUSTOMERS_CSV = """\
name,email,phone,kind,tags,consent.marketing_email,attributes.tier,address,birth_date
Ada Lovelace,ada@example.com,+44 20 7946 0001,person,vip;early,yes,gold,"12 St James's Square
London",1815-12-10
Acme Ltd,sales@acme.example,,organization,,no,,,
Grace Hopper,grace@example.com,,,navy,,,,
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(path: Path, rows: list[object]) -> Path:
    return write(path, "".join(json.dumps(row) + "\n" for row in rows))


def all_customers(crm: CRM) -> list[object]:
    return list(crm.customers.iter_all())


def read_rejects_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def read_rejects_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --- customers: happy paths ---------------------------------------------------------


def test_csv_customers_are_imported(crm: CRM, tmp_path: Path) -> None:
    path = write(tmp_path / "customers.csv", CUSTOMERS_CSV)
    result = import_customers(crm, path, actor="importer")
    assert result == ImportResult(imported=3, rejected=0, rejects_path=None)
    ada, acme, grace = crm.customers.iter_all()
    assert ada.name == "Ada Lovelace"
    assert ada.tags == ("early", "vip")
    assert ada.consent.marketing_email is True
    assert ada.attributes == {"tier": "gold"}
    assert ada.address == "12 St James's Square\nLondon"
    assert str(ada.birth_date) == "1815-12-10"
    assert acme.kind.value == "organization"
    assert acme.phone is None and acme.consent.marketing_email is False
    assert grace.tags == ("navy",) and grace.attributes == {}
    assert not list(tmp_path.glob("*.rejects.*"))


def test_jsonl_customers_are_imported(crm: CRM, tmp_path: Path) -> None:
    path = jsonl(
        tmp_path / "customers.jsonl",
        [
            {"name": "Ada", "email": "ada@example.com", "tags": ["vip"],
             "consent": {"surveys": True}, "attributes": {"tier": "gold", "score": 3}},
            {"id": 99, "name": "Acme", "kind": "organization", "registered_capital": "1000.50"},
        ],
    )  # fmt: skip
    write(path, path.read_text() + "\n")  # a trailing blank line is ignored
    result = import_customers(crm, path)
    assert (result.imported, result.rejected) == (2, 0)
    ada, acme = crm.customers.iter_all()
    assert ada.consent.surveys is True and ada.attributes == {"tier": "gold", "score": 3}
    assert acme.registered_capital == Decimal("1000.50") and acme.id != 99


def test_attribute_columns_follow_the_attributes_schema(
    db_url: str, clock: FrozenClock, tmp_path: Path
) -> None:
    schema = {
        "type": "object",
        "properties": {
            "level": {"type": "integer"},
            "score": {"type": "number"},
            "newsletter": {"type": "boolean"},
            "code": {"type": ["string", "null"]},
        },
    }
    config = Config(database_url=db_url, attributes_schema=schema)
    with CRM.open(config, discover=False, upgrade=True, clock=clock) as crm:
        good = write(
            tmp_path / "good.csv",
            "name,attributes.level,attributes.score,attributes.newsletter,attributes.code,attributes\n"
            'Ada,3,4.5,yes,007,"{""level"": 1, ""extra"": true}"\n',
        )
        import_customers(crm, good)
        (ada,) = crm.customers.iter_all()
        assert ada.attributes == {
            "level": 3, "score": 4.5, "newsletter": True, "code": "007", "extra": True
        }  # fmt: skip

        bad = write(tmp_path / "bad.csv", "name,attributes.level\nBob,gold\n")
        with pytest.raises(ValidationError) as caught:
            import_customers(crm, bad)
        assert caught.value.field == "attributes.level"
        assert "bad.csv:2: attributes.level: expected an integer, got 'gold'" in str(caught.value)


# --- customers: errors -----------------------------------------------------------------


def test_a_bad_csv_row_aborts_everything(crm: CRM, tmp_path: Path) -> None:
    rows = "".join(f"Person {n},p{n}@example.com\n" for n in range(2, 7))
    path = write(tmp_path / "customers.csv", f"name,email\n{rows}Bad,x@\nLast,last@example.com\n")
    with pytest.raises(ValidationError) as caught:
        import_customers(crm, path, batch_size=2)
    message = str(caught.value)
    assert "customers.csv:7: email: not a valid email address: 'x@'" in message
    assert caught.value.field == "email"
    assert all_customers(crm) == []
    assert not list(tmp_path.glob("*.rejects.*"))


def test_multi_line_quoted_fields_keep_line_numbers(crm: CRM, tmp_path: Path) -> None:
    text = (
        "name,address,email\n"  # line 1
        'Ada,"line one\nline two\nline three",ada@example.com\n'  # lines 2-4
        "Bob,,bob@example.com\n"  # line 5
        'Eve,"a\nb",eve@\n'  # lines 6-7, bad email
    )
    path = write(tmp_path / "customers.csv", text)
    with pytest.raises(ValidationError, match=r"customers\.csv:6: email: "):
        import_customers(crm, path)
    assert all_customers(crm) == []


def test_a_duplicate_of_a_stored_customer_aborts_with_conflict(crm: CRM, tmp_path: Path) -> None:
    crm.customers.create({"name": "Ada", "email": "ada@example.com"})
    path = write(tmp_path / "c.csv", "name,email\nNew,new@example.com\nAda again,ADA@example.com\n")
    with pytest.raises(ConflictError, match=r"c\.csv:3: duplicate customer: email"):
        import_customers(crm, path)
    assert [c.name for c in crm.customers.iter_all()] == ["Ada"]


def test_invalid_json_line_is_a_row_error(crm: CRM, tmp_path: Path) -> None:
    path = write(tmp_path / "c.jsonl", '{"name": "Ada"}\n\n{"name": \n["not", "an object"]\n')
    with pytest.raises(ValidationError, match=r"c\.jsonl:3: invalid JSON: "):
        import_customers(crm, path)
    assert all_customers(crm) == []


def test_unknown_column_is_reported_at_line_one(crm: CRM, tmp_path: Path) -> None:
    path = write(tmp_path / "customers.csv", "name,emial\nAda,ada@example.com\n")
    with pytest.raises(ValidationError) as caught:
        import_customers(crm, path)
    assert str(caught.value).startswith(f"{path}:1: emial: unknown column; known: name, ")
    assert caught.value.field == "emial"
    assert all_customers(crm) == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("name,name", "name: duplicate column"),
        ("name,,email", "column 2 has no name"),
        ("name,consent", "consent: unknown column"),
        ("name,consent.telepathy", "consent.telepathy: unknown column"),
    ],
)
def test_bad_headers(crm: CRM, tmp_path: Path, header: str, expected: str) -> None:
    path = write(tmp_path / "customers.csv", f"{header}\n")
    with pytest.raises(ValidationError, match=f":1: {expected}"):
        import_customers(crm, path)


def test_too_many_cells_is_a_row_error(crm: CRM, tmp_path: Path) -> None:
    path = write(tmp_path / "customers.csv", "name,email\nAda,ada@example.com,surplus\n")
    with pytest.raises(ValidationError, match=r":2: the row has 3 cells but the header has 2"):
        import_customers(crm, path)


def test_non_utf8_content_names_the_line(crm: CRM, tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes(b"name,email\nAda,ada@example.com\nJos\xe9,jose@example.com\n")
    with pytest.raises(ValidationError, match=r"customers\.csv:3: not valid UTF-8: byte 0xe9"):
        import_customers(crm, path)
    assert all_customers(crm) == []


def test_utf8_byte_order_mark_is_accepted(crm: CRM, tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes("\ufeffname,email\nJosé,jose@example.com\n".encode())
    assert import_customers(crm, path).imported == 1


def test_missing_file_and_unknown_extension(crm: CRM, tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(ValidationError, match=r"nope\.csv: cannot read the file: No such file"):
        import_customers(crm, missing)
    odd = write(tmp_path / "customers.txt", "name\nAda\n")
    with pytest.raises(ValidationError, match=r"customers\.txt: cannot tell the format"):
        import_customers(crm, odd)
    assert import_customers(crm, odd, format="csv").imported == 1
    with pytest.raises(ValidationError, match="format: 'xml' is not one of"):
        import_customers(crm, odd, format="xml")


def test_empty_file(crm: CRM, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="the file is empty"):
        import_customers(crm, write(tmp_path / "c.csv", ""))
    only_header = write(tmp_path / "h.csv", "name,email\n")
    assert import_customers(crm, only_header) == ImportResult(0, 0, None)


# --- customers: skip_invalid -------------------------------------------------------------


def test_skip_invalid_stores_good_rows_and_writes_every_rejected_row(
    crm: CRM, tmp_path: Path
) -> None:
    crm.customers.create({"name": "Stored", "email": "stored@example.com"})
    text = (
        "name,email,size\n"  # 1
        "Ada,ada@example.com,\n"  # 2 good
        "Bad email,x@,\n"  # 3 invalid email
        '"Multi\nline",dup@example.com,\n'  # 4-5 good
        "Dup in file,DUP@example.com,\n"  # 6 duplicate of line 4 (same batch)
        "Dup stored,stored@example.com,\n"  # 7 duplicate of a stored customer
        ",noname@example.com,\n"  # 8 missing name
        "Big,big@example.com,many\n"  # 9 size is not an integer
        "Zed,zed@example.com,12\n"  # 10 good
    )
    path = write(tmp_path / "customers.csv", text)
    result = import_customers(crm, path, skip_invalid=True)
    assert (result.imported, result.rejected) == (3, 5)
    assert result.rejects_path == tmp_path / "customers.rejects.csv"
    names = [c.name for c in crm.customers.iter_all()]
    assert names == ["Stored", "Ada", "Multi\nline", "Zed"]

    rejects = read_rejects_csv(result.rejects_path)
    assert list(rejects[0]) == ["name", "email", "size", "_line", "_error"]
    by_line = {r["_line"]: r for r in rejects}
    assert sorted(by_line, key=int) == ["3", "6", "7", "8", "9"]
    assert by_line["3"]["email"] == "x@"
    assert "email: not a valid email address" in by_line["3"]["_error"]
    assert "also used by the row at line 4" in by_line["6"]["_error"]
    assert "duplicate customer: email 'stored@example.com'" in by_line["7"]["_error"]
    assert "name" in by_line["8"]["_error"]
    assert by_line["9"]["_error"].startswith("size: ")


def test_skip_invalid_without_bad_rows_creates_no_rejects_file(crm: CRM, tmp_path: Path) -> None:
    path = write(tmp_path / "customers.csv", CUSTOMERS_CSV)
    result = import_customers(crm, path, skip_invalid=True)
    assert result == ImportResult(imported=3, rejected=0, rejects_path=None)
    assert not (tmp_path / "customers.rejects.csv").exists()


def test_skip_invalid_jsonl_rejects_keep_the_original_row(crm: CRM, tmp_path: Path) -> None:
    path = write(
        tmp_path / "customers.jsonl",
        '{"name": "Ada"}\n'
        "{broken\n"
        '{"name": "Bob", "email": "bob@"}\n'
        "[1, 2]\n"
        '{"name": "Cy", "colour": "blue"}\n'
        '{"name": "Dee"}\n',
    )
    rejects_path = tmp_path / "out" / "bad.jsonl"
    rejects_path.parent.mkdir()
    result = import_customers(crm, path, skip_invalid=True, rejects_path=rejects_path)
    assert (result.imported, result.rejected, result.rejects_path) == (2, 4, rejects_path)
    # Rows are rejected as the problems are found, so sort by line.
    rejects = sorted(read_rejects_jsonl(rejects_path), key=lambda r: int(str(r["line"])))
    assert [r["line"] for r in rejects] == [2, 3, 4, 5]
    assert rejects[0]["row"] == "{broken" and "invalid JSON" in str(rejects[0]["error"])
    assert rejects[1]["row"] == {"name": "Bob", "email": "bob@"}
    assert "email: not a valid email address" in str(rejects[1]["error"])
    assert rejects[2]["row"] == [1, 2] and "expected a JSON object" in str(rejects[2]["error"])
    assert rejects[3]["error"] == "colour: unknown field"


# --- streaming and progress ----------------------------------------------------------------


def test_progress_is_called_once_per_batch_while_the_file_is_read(crm: CRM, tmp_path: Path) -> None:
    rows = "".join(f"Person {n},p{n}@example.com\n" for n in range(1, 1001))
    path = write(tmp_path / "customers.csv", "name,email\n" + rows)
    size = path.stat().st_size
    calls: list[tuple[int, int]] = []
    result = import_customers(crm, path, batch_size=300, progress=lambda r, b: calls.append((r, b)))
    assert result.imported == 1000
    assert [rows for rows, _ in calls] == [300, 600, 900, 1000]
    bytes_read = [b for _, b in calls]
    assert bytes_read == sorted(bytes_read) and bytes_read[-1] == size
    # After the first batch only the first ~30% of the file had been read: it is streamed.
    assert bytes_read[0] < size // 2


def test_rows_reach_the_service_before_the_rest_of_the_file_is_read(
    crm: CRM, tmp_path: Path
) -> None:
    """The bad row on line 2 is reported, not the malformed CSV at the end: reading is lazy."""
    good = "".join(f"Person {n},p{n}@example.com\n" for n in range(1, 11))
    huge = "x" * (csv.field_size_limit() + 10)
    path = write(tmp_path / "customers.csv", f"name,email\nBad,x@\n{good}{huge},h@example.com\n")
    with pytest.raises(ValidationError, match=r":2: email"):
        import_customers(crm, path, batch_size=2)
    with pytest.raises(ValidationError, match=r":13: malformed CSV: field larger than field limit"):
        import_customers(crm, path, batch_size=2, skip_invalid=True)
    assert all_customers(crm) == []
    assert not (tmp_path / "customers.rejects.csv").exists()  # rolled back, so removed too


# --- interactions --------------------------------------------------------------------------


@pytest.fixture
def people(crm: CRM) -> Iterator[dict[str, int]]:
    ada = crm.customers.create({"name": "Ada", "email": "Ada@Example.com"})
    bob = crm.customers.create({"name": "Bob", "email": "bob@example.com"})
    assert ada.id is not None and bob.id is not None
    yield {"ada": ada.id, "bob": bob.id}


def test_csv_interactions_are_imported(crm: CRM, people: dict[str, int], tmp_path: Path) -> None:
    items = json.dumps([{"sku": "A1", "quantity": "2", "unit_price": "9.99"}]).replace('"', '""')
    text = (
        "customer_id,customer_email,kind,channel,direction,occurred_at,amount,currency,text,"
        "handled_by,response_seconds,payload,items\n"
        f"{people['ada']},,purchase,web,inbound,2025-06-01T10:00:00+02:00,19.98,EUR,,,,"
        f'"{{""order"": ""X1""}}","{items}"\n'
        ",ada@example.com,call,phone,outbound,2025-06-02T09:00:00+00:00,,,"
        '"Called\nabout delivery",sam,12.5,,\n'
        ",BOB@example.com,inquiry,email,,2025-06-03T09:00:00Z,,,,,,,\n"
    )
    path = write(tmp_path / "interactions.csv", text)
    result = import_interactions(crm, path)
    assert result == ImportResult(imported=3, rejected=0, rejects_path=None)
    ada_items = crm.interactions.timeline(people["ada"]).items
    call, purchase = ada_items
    assert purchase.amount == Decimal("19.98") and purchase.currency == "EUR"
    assert purchase.payload == {"order": "X1"}
    assert purchase.items[0].quantity == Decimal(2)
    assert call.text == "Called\nabout delivery" and call.response_seconds == 12.5
    assert crm.interactions.timeline(people["bob"]).total == 1
    assert crm.customers.get(people["ada"]).stage is Stage.NEW  # the purchase moved her


def test_jsonl_interactions_are_imported(crm: CRM, people: dict[str, int], tmp_path: Path) -> None:
    path = jsonl(
        tmp_path / "interactions.jsonl",
        [
            {"customer_id": people["bob"], "kind": "chat",
             "occurred_at": "2025-01-01T00:00:00+00:00", "payload": {"thread": 7}},
            {"customer_email": "ada@example.com", "kind": "purchase", "amount": "5",
             "currency": "USD", "occurred_at": "2025-01-02T00:00:00+00:00",
             "items": [{"sku": "Z", "quantity": "1"}]},
        ],
    )  # fmt: skip
    assert import_interactions(crm, path).imported == 2
    (chat,) = crm.interactions.timeline(people["bob"]).items
    assert chat.payload == {"thread": 7}
    assert crm.interactions.timeline(people["ada"]).items[0].amount == Decimal(5)


def test_unknown_customer_email_is_a_row_error(
    crm: CRM, people: dict[str, int], tmp_path: Path
) -> None:
    path = write(
        tmp_path / "interactions.csv",
        "customer_email,kind,occurred_at\n"
        "ada@example.com,call,2025-01-01T00:00:00+00:00\n"
        "nobody@example.com,call,2025-01-01T00:00:00+00:00\n",
    )
    with pytest.raises(ValidationError) as caught:
        import_interactions(crm, path)
    assert "interactions.csv:3: customer_email: no customer has the email address" in str(
        caught.value
    )
    assert caught.value.field == "customer_email"
    assert crm.interactions.list().total == 0


def test_interaction_row_errors_with_skip_invalid(
    crm: CRM, people: dict[str, int], tmp_path: Path
) -> None:
    text = (
        "customer_id,customer_email,kind,occurred_at,amount,currency\n"  # 1
        f"{people['ada']},,call,2025-01-01T00:00:00+00:00,,\n"  # 2 good
        "999999,,call,2025-01-01T00:00:00+00:00,,\n"  # 3 unknown customer id
        f"{people['ada']},ada@example.com,call,2025-01-01T00:00:00+00:00,,\n"  # 4 both given
        ",not-an-email,call,2025-01-01T00:00:00+00:00,,\n"  # 5 invalid email
        ",bob@example.com,purchase,2025-01-01T00:00:00+00:00,,\n"  # 6 purchase without amount
        ",bob@example.com,call,2025-01-01T00:00:00,,\n"  # 7 naive datetime
        ",bob@example.com,visit,2025-01-01T00:00:00+00:00,,\n"  # 8 good
    )
    path = write(tmp_path / "interactions.csv", text)
    result = import_interactions(crm, path, skip_invalid=True, batch_size=3)
    assert (result.imported, result.rejected) == (2, 5)
    rejects = {
        r["_line"]: r["_error"] for r in read_rejects_csv(tmp_path / "interactions.rejects.csv")
    }
    assert sorted(rejects, key=int) == ["3", "4", "5", "6", "7"]
    assert rejects["3"] == "customer_id: customer 999999 does not exist"
    assert "not both" in rejects["4"]
    assert rejects["5"].startswith("customer_email: not a valid email address")
    assert rejects["6"] == "amount: required for a purchase"
    assert rejects["7"].startswith("occurred_at: ")
    assert crm.interactions.list().total == 2


def test_unknown_customer_id_aborts_with_its_line(
    crm: CRM, people: dict[str, int], tmp_path: Path
) -> None:
    path = jsonl(
        tmp_path / "i.jsonl",
        [
            {"customer_id": people["ada"], "kind": "call", "occurred_at": "2025-01-01T00:00:00Z"},
            {"customer_id": 424242, "kind": "call", "occurred_at": "2025-01-01T00:00:00Z"},
        ],
    )
    with pytest.raises(NotFoundError, match=r"i\.jsonl:2: customer_id: customer 424242"):
        import_interactions(crm, path)
    assert crm.interactions.list().total == 0


def test_unknown_interaction_column(crm: CRM, tmp_path: Path) -> None:
    path = write(tmp_path / "i.csv", "customer_id,kind,occurred_at,mood\n")
    with pytest.raises(ValidationError, match=r"i\.csv:1: mood: unknown column") as caught:
        import_interactions(crm, path)
    assert caught.value.field == "mood"
