"""Re-running an interactions import stores nothing twice: external ids and content keys."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crmcore import CRM, ConflictError, ValidationError
from crmcore.io.imports import import_interactions
from crmcore.storage.tables import interactions, lifecycle_events

T0 = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)


def count(crm: CRM, table=interactions) -> int:  # type: ignore[no-untyped-def]
    with crm.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def snapshot(crm: CRM) -> list[tuple[object, ...]]:
    with crm.engine.connect() as conn:
        rows = conn.execute(
            select(
                interactions.c.customer_id,
                interactions.c.kind,
                interactions.c.amount,
                interactions.c.source,
                interactions.c.external_id,
            ).order_by(interactions.c.id)
        ).all()
    return [tuple(r) for r in rows]


@pytest.fixture
def buyers(crm: CRM) -> list[int]:
    ids = [
        crm.customers.create({"name": f"B{n}", "email": f"b{n}@example.com"}).id for n in range(3)
    ]
    return [i for i in ids if i is not None]


def purchases_csv(path: Path, buyers: list[int], rows: int) -> Path:
    lines = ["customer_id,kind,occurred_at,amount,currency"]
    for n in range(rows):
        lines.append(
            f"{buyers[n % len(buyers)]},purchase,2025-06-{1 + n % 28:02d}T10:00:00Z,{n}.50,EUR"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_record_with_external_id_is_idempotent(crm: CRM, buyers: list[int]) -> None:
    item = {"customer_id": buyers[0], "kind": "purchase", "occurred_at": T0, "amount": "5.00",
            "currency": "EUR", "source": "shop", "external_id": "order-1"}  # fmt: skip
    first = crm.interactions.record(item)
    again = crm.interactions.record(item)
    assert again.id == first.id and count(crm) == 1
    # Only the first recording moved the customer: one lifecycle event for creation, one move.
    with crm.engine.connect() as conn:
        moves = conn.execute(
            select(func.count())
            .select_from(lifecycle_events)
            .where(
                lifecycle_events.c.customer_id == buyers[0],
                lifecycle_events.c.reason == "first purchase",
            )
        ).scalar_one()
    assert moves == 1
    # Same key, other source: a different interaction.
    crm.interactions.record({**item, "source": "pos"})
    assert count(crm) == 2
    # No source: stored under "default".
    stored = crm.interactions.record({**item, "source": None, "external_id": "x"})
    assert stored.source == "default" and stored.external_id == "x"


def test_repeated_key_in_one_batch_is_stored_once(crm: CRM, buyers: list[int]) -> None:
    item = {"customer_id": buyers[0], "kind": "inquiry", "occurred_at": T0, "external_id": "t-1"}
    seen: list[tuple[int, int | None]] = []
    stored = crm.interactions.record_many(
        [item, item, {**item, "external_id": "t-2"}],
        on_existing=lambda position, _item, stored_id: seen.append((position, stored_id)),
    )
    assert [i.external_id for i in stored] == ["t-1", "t-2"]
    assert seen == [(1, None)]
    seen.clear()
    crm.interactions.record_many([item], on_existing=lambda p, _i, s: seen.append((p, s)))
    assert seen == [(0, stored[0].id)]


def test_key_of_another_customer_is_a_conflict(crm: CRM, buyers: list[int]) -> None:
    item = {"customer_id": buyers[0], "kind": "inquiry", "occurred_at": T0, "external_id": "t-1"}
    crm.interactions.record(item)
    with pytest.raises(ConflictError, match="already recorded for another customer"):
        crm.interactions.record({**item, "customer_id": buyers[1]})
    assert count(crm) == 1


@pytest.mark.parametrize("bad", ["", "   ", "x" * 201, "a\x00b"])
def test_bad_external_ids_are_refused(crm: CRM, buyers: list[int], bad: str) -> None:
    with pytest.raises(ValidationError, match="external_id"):
        crm.interactions.record(
            {"customer_id": buyers[0], "kind": "inquiry", "occurred_at": T0, "external_id": bad}
        )
    assert count(crm) == 0


def test_rerunning_an_import_stores_nothing_twice(
    crm: CRM, buyers: list[int], tmp_path: Path
) -> None:
    path = purchases_csv(tmp_path / "purchases.csv", buyers, 30)
    first = import_interactions(crm, path, batch_size=7)
    assert (first.imported, first.already_stored) == (30, 0)
    before = snapshot(crm)
    second = import_interactions(crm, path, batch_size=7)
    assert (second.imported, second.already_stored) == (0, 30)
    assert snapshot(crm) == before
    assert all(src == "import" and ext.startswith("content:") for *_, src, ext in before)
    # A re-ordered copy of the same file: same content keys.
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    reordered = [",".join(reversed(header))]
    reordered += [",".join(reversed(line.split(","))) for line in lines[1:]]
    path.write_text("\n".join(reordered) + "\n", encoding="utf-8")
    assert import_interactions(crm, path).already_stored == 30
    assert snapshot(crm) == before


def test_id_column_and_external_id_column(crm: CRM, buyers: list[int], tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(
        "order_no,customer_id,kind,occurred_at,amount,currency\n"
        f"A-1,{buyers[0]},purchase,2025-06-01T10:00:00Z,10.00,EUR\n"
        f"A-2,{buyers[1]},purchase,2025-06-01T10:00:00Z,10.00,EUR\n",
        encoding="utf-8",
    )
    assert import_interactions(crm, path, id_column="order_no", source="shop").imported == 2
    # The corrected amount of A-1 is not applied twice: the first recording wins.
    path.write_text(
        path.read_text().replace("A-1,", "A-1,").replace(",10.00,EUR\n", ",12.00,EUR\n", 1)
    )
    again = import_interactions(crm, path, id_column="order_no", source="shop")
    assert (again.imported, again.already_stored) == (0, 2)
    assert sorted(ext for *_, ext in snapshot(crm)) == ["A-1", "A-2"]
    plain = purchases_csv(tmp_path / "plain.csv", buyers, 1)
    with pytest.raises(ValidationError, match="id column 'nope' is not in the header"):
        import_interactions(crm, plain, id_column="nope")


def test_identical_rows_of_one_file_are_one_interaction(
    crm: CRM, buyers: list[int], tmp_path: Path
) -> None:
    path = tmp_path / "dup.jsonl"
    row = {"customer_id": buyers[0], "kind": "inquiry", "occurred_at": "2025-06-01T10:00:00+00:00"}
    path.write_text(json.dumps(row) + "\n" + json.dumps(dict(reversed(row.items()))) + "\n")
    result = import_interactions(crm, path)
    assert (result.imported, result.already_stored) == (1, 1)
    assert import_interactions(crm, path, dedupe=False).imported == 2
    assert count(crm) == 3


def test_killed_import_with_commit_every_resumes(db_url: str, tmp_path: Path) -> None:
    """A process importing with commit_every is killed mid-way; the re-run completes it exactly."""
    with CRM.open(db_url, discover=False, upgrade=True) as crm:
        ids = [crm.customers.create({"name": f"K{n}"}).id for n in range(4)]
    path = purchases_csv(tmp_path / "big.csv", [i for i in ids if i is not None], 3000)
    script = textwrap.dedent(
        f"""
        import os, signal
        from crmcore import CRM
        from crmcore.io.imports import import_interactions
        crm = CRM.open({db_url!r}, discover=False)
        def progress(rows, _bytes):
            if rows >= 1700:
                os.kill(os.getpid(), signal.SIGKILL)
        import_interactions(crm, {str(path)!r}, batch_size=100, commit_every=500, progress=progress)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()
    with CRM.open(db_url, discover=False) as crm:
        committed = count(crm)
        assert committed in (1500, 2000)  # whole segments only
        result = import_interactions(crm, path, batch_size=100, commit_every=500)
        assert result.already_stored == committed
        assert result.imported == 3000 - committed
        assert count(crm) == 3000
        again = import_interactions(crm, path)
        assert (again.imported, again.already_stored) == (0, 3000)
