"""Bounded work: no per-customer re-scan in any query plan, streamed listings, paged writes.

Performance itself is measured in ``benchmarks/bench_memory.py``; these tests
check the shapes that make it scale: SQLite's query plans hold no full scan
run once per row of an outer loop (the quadratic ``customer_values`` of issue
15), the number of statements does not grow with the customers, iterator
forms give the same rows as the list forms, and every listing honours
``--limit`` with ``--json``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import crmcore_segmentation.plugin
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from crmcore_segmentation import (
    basket,
    churn,
    intervals,
    predictive_summary,
    retention,
    retention_groups,
    rfm,
    segments,
    value,
)
from crmcore_segmentation.cli import _plain
from crmcore_segmentation.purchases import counted_purchases, raw_sum

from crmcore import CRM
from crmcore.cli import build_cli
from crmcore.cli.context import CLIState
from crmcore.hooks import hookimpl

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def shop(crm: CRM, n: int) -> list[int]:
    """``n`` customers; customer k buys 1 + k % 4 times over the last 400 days (1-3 SKUs)."""
    ids = [c.id for c in crm.customers.create_many([{"name": f"C{i}"} for i in range(n)])]
    rows = [
        {
            "customer_id": cid,
            "kind": "purchase",
            "occurred_at": (NOW - timedelta(days=(37 * k + 91 * j) % 400 + 1)).isoformat(),
            "amount": str(5 + (k * 7 + j) % 60),
            "currency": "EUR",
            "items": [{"sku": f"s{(k + j + i) % 4}"} for i in range(1 + (k + j) % 3)],
        }
        for k, cid in enumerate(ids)
        for j in range(1 + k % 4)
    ]
    crm.interactions.record_many(rows)
    return [int(i) for i in ids if i is not None]


def rescans(plan: list[tuple[int, int, int, str]]) -> list[str]:
    """Full scans in an EXPLAIN QUERY PLAN that run once per row of an enclosing loop.

    A ``SCAN`` after another loop (SCAN or SEARCH) under the same parent is
    an inner loop of a join; one inside a correlated subquery runs per outer
    row. Both re-read the whole table or derived table for every row.
    ``MATERIALIZE``, ``CO-ROUTINE`` and uncorrelated ``LIST SUBQUERY`` (``IN (SELECT
    ...)``) bodies run once. A ``VIRTUAL TABLE`` scan is
    ``json_each`` over the outer row's own JSON (its item lines), not a re-read.
    """
    children: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for node, parent, _, detail in plan:
        children[parent].append((node, detail))
    found: list[str] = []

    def walk(parent: int, per_row: bool) -> None:
        looped = False
        for node, detail in children.get(parent, []):
            inner = per_row or looped
            own_row = "CONSTANT ROW" in detail or "VIRTUAL TABLE" in detail
            if detail.startswith("SCAN ") and not own_row and inner:
                found.append(detail)
            if detail.startswith(("MATERIALIZE", "CO-ROUTINE", "LIST SUBQUERY")):
                walk(node, per_row)
            else:
                walk(node, inner or detail.startswith("CORRELATED"))
            if detail.startswith(("SCAN ", "SEARCH ")):
                looped = True

    walk(0, False)
    return found


@contextmanager
def statements(crm: CRM) -> Iterator[list[tuple[str, list[str]]]]:
    """Every statement run on ``crm``'s engine meanwhile, with its SQLite plan's re-scans."""
    seen: list[tuple[str, list[str]]] = []

    def before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool):
        if not statement.lstrip().upper().startswith(("SELECT", "WITH", "INSERT", "DELETE")):
            return
        found: list[str] = []
        if conn.dialect.name == "sqlite" and not many:
            raw = cursor.connection
            plan = raw.execute("EXPLAIN QUERY PLAN " + statement, params).fetchall()
            found = rescans([tuple(row) for row in plan])
        seen.append((statement, found))

    sa.event.listen(crm.engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        sa.event.remove(crm.engine, "before_cursor_execute", before)


def every_analysis(crm: CRM) -> None:
    """Each of the plugin's analyses and listings, exhausted."""
    value.customer_values(crm)
    value.tiers(crm, "profit")
    value.tiers(crm, "monetary")
    value.tier_members(crm, "high", "profit")
    value.pareto(crm, "profit")
    value.pareto(crm, "monetary")
    rfm.rfm_scores(crm)
    rfm.rfm_grid(crm)
    churn.assess_churn(crm)
    list(churn.ranked_churn(crm))
    retention.cohort_matrix(crm, months=3)
    rule = {
        "all": [
            {"field": "rfm.r", "op": "ge", "value": 1},
            {"field": "tier", "op": "in", "value": ["high", "medium", "low"]},
            {"not": {"field": "tag", "op": "eq", "value": "x"}},
        ]
    }
    segments.define_segment(crm, "everyone", rule)
    segments.refresh_segments(crm)
    segments.segment_members(crm, "everyone")
    # Issue 15's analyses: model summary, intervals, retention by group, basket rules.
    predictive_summary.customer_summaries(crm)
    intervals.interval_stats(crm)
    retention_groups.retention_by_group(crm, "field:stage")
    retention_groups.retention_by_group(crm, "tier")
    assert basket.association_rules(crm, min_support=0.05).rules  # pairs and triples ran


@pytest.fixture
def seg(crm_factory: Callable[..., CRM], clock: Any) -> CRM:
    clock.set(NOW)
    return crm_factory(
        plugins=[crmcore_segmentation.plugin],
        plugin_sections={"segmentation": {"tiers": {"basis": "profit"}}},
    )


def test_no_plan_rescans_per_customer_and_statements_do_not_grow(seg: CRM) -> None:
    """The quadratic query is gone: no plan re-scans per row; statement counts stay put."""
    counts = []
    for _ in range(2):  # 30 customers, then 60
        shop(seg, 30)
        with statements(seg) as seen:
            every_analysis(seg)
        assert [(sql[:80], found) for sql, found in seen if found] == []
        counts.append(sum(1 for sql, _ in seen if sql.lstrip().upper().startswith("SELECT")))
    assert counts[0] == counts[1]


def test_the_plan_check_catches_the_old_query_shape(seg: CRM) -> None:
    """The check is not vacuous: the left join of a derived table (before the fix) is caught."""
    shop(seg, 10)
    purchases = counted_purchases(seg, NOW).subquery("lp")
    life = (
        sa.select(purchases.c.customer_id, raw_sum(purchases.c.net).label("revenue"))
        .group_by(purchases.c.customer_id)
        .subquery("life")
    )
    scored = rfm.rfm_query(seg).subquery("rfm_now")
    old = sa.select(life, scored.c.segment).select_from(
        life.outerjoin(scored, scored.c.customer_id == life.c.customer_id)
    )
    with statements(seg) as seen, seg.reading() as uow:
        assert len(uow.connection.execute(old).all()) == 10
    if seg.engine.dialect.name == "sqlite":
        assert any("rfm" in scan or "ranked" in scan for scan in seen[0][1]), seen[0][1]


def test_iterator_forms_equal_the_lists(seg: CRM) -> None:
    """Iterators, limits and the Pareto summary give the rows and figures of the list forms."""
    shop(seg, 40)
    values = value.customer_values(seg)
    assert list(value.iter_customer_values(seg)) == values
    assert list(value.iter_customer_values(seg, limit=5)) == values[:5]
    scores = rfm.rfm_scores(seg)
    assert list(rfm.iter_rfm_scores(seg, limit=3)) == scores[:3]
    high = value.tier_members(seg, "high")
    assert list(value.iter_tier_members(seg, "high", limit=2)) == high[:2]
    full = value.pareto(seg, "monetary", percent=50)
    summary = value.pareto_summary(seg, "monetary", percent=50)
    assert (summary.total, summary.customers_valued, summary.members, summary.value) == (
        full.total,
        full.customers_valued,
        len(full.members),
        full.value,
    )
    assert summary.customer_share_percent == full.customer_share_percent
    members = list(value.iter_pareto_members(seg, "monetary", percent=50, limit=3))
    assert members == list(full.members[:3])


def test_churn_streams_ranked_as_the_list(crm_factory: Callable[..., CRM], clock: Any) -> None:
    """ranked_churn (temporary table or bounded heap) equals assess_churn's full sort."""
    clock.set(NOW)
    crm = crm_factory(
        plugins=[crmcore_segmentation.plugin],
        plugin_sections={"segmentation": {"churn": {"threshold": 0.2, "inactivity_days": 30}}},
    )
    shop(crm, 60)
    flagged = churn.assess_churn(crm)
    assert len(flagged) > 10
    assert flagged == sorted(flagged, key=lambda a: (-a.score, a.customer_id))
    assert list(churn.ranked_churn(crm)) == flagged
    assert list(churn.ranked_churn(crm, limit=7)) == flagged[:7]
    assert churn.assess_churn(crm, limit=4) == flagged[:4]
    by_id = list(churn.iter_churn(crm))
    assert [a.customer_id for a in by_id] == sorted(a.customer_id for a in flagged)
    assert sorted(by_id, key=lambda a: (-a.score, a.customer_id)) == flagged
    moves = churn.apply_churn(crm, keep=3)
    assert moves.moved == len([a for a in flagged if a.stage in ("new", "active", "loyal")])
    assert list(moves.top) == [a for a in flagged if a.stage in ("new", "active", "loyal")][:3]


class Recorder:
    """Records the membership hook's calls."""

    def __init__(self) -> None:
        self.calls: list[list[tuple[int, bool]]] = []

    @hookimpl
    def segmentation_membership_changed(self, ctx: Any, changes: Any) -> None:
        self.calls.append([(c["customer_id"], c["joined"]) for c in changes])


def test_refresh_in_sql_matches_python_and_batches_the_hook(
    crm_factory: Callable[..., CRM], clock: Any
) -> None:
    """Joins and leaves computed in SQL equal a plain-Python diff; the hook gets batches."""
    clock.set(NOW)
    recorder = Recorder()
    crm = crm_factory(plugins=[crmcore_segmentation.plugin, recorder])
    created = crm.customers.create_many(
        [{"name": f"C{i}", "attributes": {"k": i % 2}} for i in range(1100)]
    )
    ids = [int(c.id) for c in created if c.id is not None]
    parity = {c.id: c.attributes["k"] for c in created}
    even = {"field": "attributes.k", "op": "eq", "value": 0}
    result = segments.define_segment(crm, "even", even)
    wanted = sorted(cid for cid in ids if parity[cid] == 0)
    assert result.member_count == len(wanted)
    assert [m["customer_id"] for m in segments.segment_members(crm, "even")] == wanted
    assert [len(call) for call in recorder.calls] == [500, len(wanted) - 500]
    assert [cid for call in recorder.calls for cid, _ in call] == wanted
    recorder.calls.clear()
    clock.advance(days=1)
    for cid in ids[:4]:
        crm.customers.update(cid, {"attributes": {"k": 0}})
    for cid in wanted[-3:]:
        crm.customers.update(cid, {"attributes": {"k": 1}})
    joined = sorted(cid for cid in ids[:4] if parity[cid] == 1)
    left = wanted[-3:]
    assert segments.refresh_segments(crm, ["even"])["even"] == {
        "joined": len(joined),
        "left": len(left),
        "members": len(wanted) + len(joined) - len(left),
    }
    assert recorder.calls == [[(c, True) for c in joined], [(c, False) for c in left]]
    history = segments.membership_history(crm, "even")
    assert [(h["customer_id"], h["joined"]) for h in history[-len(joined) - len(left) :]] == [
        *((c, True) for c in joined),
        *((c, False) for c in left),
    ]


def run(crm: CRM, *args: str) -> Any:
    """``crm ARGS`` on ``crm``; the parsed JSON output."""
    result = CliRunner().invoke(build_cli(), list(args), obj=CLIState(crm=crm))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_every_listing_honours_limit_with_json(seg: CRM) -> None:
    """--limit N gives N rows with --json, --limit 0 every row, equal to the service's."""
    shop(seg, 30)
    segments.define_segment(seg, "all", {"field": "customer.stage", "op": "exists"})
    listings: list[tuple[list[str], Callable[[Any], list[Any]], list[Any]]] = [
        (["rfm"], lambda out: out, [s.as_dict() for s in rfm.rfm_scores(seg)]),
        (["clv"], lambda out: out, [v.as_dict() for v in value.customer_values(seg)]),
        (["members", "all"], lambda out: out, segments.segment_members(seg, "all")),
        (
            ["tiers", "--members", "low"],
            lambda out: out,
            value.tier_members(seg, "low"),
        ),
        (
            ["pareto", "--percent", "100"],
            lambda out: out["customers"],
            list(value.pareto(seg, percent=100).members),
        ),
        (["churn"], lambda out: out, [a.as_dict() for a in churn.assess_churn(seg)]),
    ]
    for args, rows, expected in listings:
        assert len(expected) > 2, args
        everything = rows(run(seg, "segments", *args, "--json", "--limit", "0"))
        assert everything == json.loads(json.dumps(_plain(expected), default=str)), args
        assert rows(run(seg, "segments", *args, "--json", "--limit", "2")) == everything[:2], args
    segments.define_segment(seg, "also", {"field": "customer.stage", "op": "exists"})
    assert [s["key"] for s in run(seg, "segments", "list", "--json")] == ["all", "also"]
    assert [s["key"] for s in run(seg, "segments", "list", "--json", "--limit", "1")] == ["all"]
    pareto = run(seg, "segments", "pareto", "--percent", "100", "--json", "--limit", "1")
    assert pareto["members"] == len(value.pareto(seg, percent=100).members) > 1


def test_streamed_json_is_print_json_of_the_whole_document(seg: CRM) -> None:
    """Streamed listings print exactly what print_json prints: exact, terminal-safe JSON."""
    from crmcore.cli.output import safe_json

    cid = seg.customers.create({"name": "Evil \u202etxt.exe"}).id
    segments.define_segment(seg, "one", {"field": "customer.id", "op": "eq", "value": cid})
    result = CliRunner().invoke(
        build_cli(), ["segments", "members", "one", "--json"], obj=CLIState(crm=seg)
    )
    assert result.exit_code == 0, result.output
    expected = _plain(segments.segment_members(seg, "one"))
    assert result.output == safe_json(expected) + "\n"
    assert "\u202e" not in result.output and json.loads(result.output) == expected
