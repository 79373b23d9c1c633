"""Resolution with compensation, survey follow-ups, privacy, views, config and the command line."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import crmcore_complaints.plugin
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from crmcore_complaints import ComplaintService, State

from crmcore import CRM, ConfigError, Customer, PluginError, ValidationError
from crmcore.cli import build_cli
from crmcore.hooks import hookimpl, hookspec
from crmcore.testing import FrozenClock


def rows(crm: CRM, table: str, where: str = "1=1") -> list[dict[str, Any]]:
    """Every row of ``table`` matching ``where``, as dicts."""
    with crm.engine.connect() as conn:
        return [
            dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM {table} WHERE {where}"))
        ]


# --- compensation ------------------------------------------------------------------------


def test_compensation_fires_the_hook_in_the_resolution(
    ccrm: CRM, service: ComplaintService, customer: int, recorder: Any
) -> None:
    """Points and a refund of a purchase: stored, a core refund recorded, the hook fired once."""
    purchase = ccrm.interactions.record(
        {
            "customer_id": customer,
            "kind": "purchase",
            "occurred_at": ccrm.clock() - timedelta(days=3),
            "amount": "80.00",
            "currency": "EUR",
        }
    )
    cid = service.open({"customer_id": customer, "category": "product/defect"}).id
    service.resolve(
        cid,
        resolution="Refunded and apologised",
        root_cause="supplier",
        compensations=[
            {"kind": "points", "points": 200, "reason": "sorry"},
            {"kind": "refund", "amount": "19.90", "currency": "EUR", "refund_of": purchase.id},
        ],
        actor="ann",
    )
    assert [(c["kind"], c["points"], c["amount"]) for c in recorder.compensations] == [
        ("points", 200, None),
        ("refund", None, Decimal("19.90")),
    ]
    first = recorder.compensations[0]
    assert set(first) == {
        "complaint_id",
        "customer_id",
        "kind",
        "points",
        "amount",
        "currency",
        "reason",
        "idempotency_key",
    }
    assert first["customer_id"] == customer and first["reason"] == "sorry"
    keys = {c["idempotency_key"] for c in recorder.compensations}
    assert len(keys) == 2
    refunds = ccrm.interactions.timeline(customer, kinds=["refund"]).items
    assert [(r.amount, r.payload["refund_of"]) for r in refunds] == [
        (Decimal("19.90"), purchase.id)
    ]
    assert [c["kind"] for c in service.compensations(cid)] == ["points", "refund"]


BAD_GRANTS: list[tuple[dict[str, Any], str]] = [
    ({"kind": "cash"}, "compensations.0.kind: 'cash' is not one of"),
    ({"kind": "points"}, "compensations.0.points: required"),
    ({"kind": "points", "points": -5}, "compensations.0.points: must be a positive integer"),
    ({"kind": "refund", "amount": "5"}, "compensations.0.currency: required"),
    ({"kind": "voucher", "currency": "EUR"}, "compensations.0.amount: required"),
    ({"kind": "refund", "amount": 1.5, "currency": "EUR"}, "compensations.0.amount: expected"),
    (
        {"kind": "refund", "amount": "5", "currency": "EUR", "refund_of": 999},
        "compensations.0.refund_of: interaction 999 is not a purchase",
    ),
]


def test_bad_compensation_resolves_nothing(
    ccrm: CRM, service: ComplaintService, customer: int, recorder: Any
) -> None:
    """A bad compensation refuses the whole resolution."""
    cid = service.open({"customer_id": customer, "category": "other"}).id
    for grant, message in BAD_GRANTS:
        with pytest.raises(ValidationError, match=f"^{message}"):
            service.resolve(cid, resolution="x", compensations=[grant])
    assert service.get(cid).state is State.OPEN
    assert len(service.history(cid)) == 1
    assert rows(ccrm, "complaints_compensations") == [] and recorder.compensations == []


def test_a_failing_compensation_hook_rolls_the_resolution_back(
    open_crm: Callable[..., CRM],
) -> None:
    """If the loyalty side fails, the complaint stays unresolved and no refund is recorded."""

    class Broken:
        @hookimpl(optionalhook=True)
        def complaints_compensation_issued(self, ctx: Any, compensations: Any) -> None:
            raise RuntimeError("ledger locked")

    crm = open_crm(extra=[Broken()])
    service = ComplaintService(crm)
    customer = crm.customers.create({"name": "Eve"}).id
    assert customer
    cid = service.open({"customer_id": customer, "category": "other"}).id
    with pytest.raises(PluginError, match="ledger locked"):
        service.resolve(cid, resolution="x", compensations=[{"kind": "points", "points": 5}])
    assert service.get(cid).state is State.OPEN
    assert rows(crm, "complaints_compensations") == []


def test_root_cause_must_be_configured(service: ComplaintService, customer: int) -> None:
    """An unknown root cause is refused with the known ones listed."""
    cid = service.open({"customer_id": customer, "category": "other"}).id
    with pytest.raises(ValidationError, match=r"^root_cause: 'gremlins' is not one of: process"):
        service.resolve(cid, resolution="x", root_cause="gremlins")


# --- surveys ------------------------------------------------------------------------------


class SurveysSpec:
    """The surveys plugin's hook, declared here as the surveys plugin does."""

    @hookspec
    def surveys_low_score(self, ctx: Any, responses: Sequence[Mapping[str, Any]]) -> None:
        """A low survey score."""


class FakeSurveys:
    """Stands in for the surveys plugin: publishes its hookspec."""

    @hookimpl
    def crm_add_hookspecs(self, pm: Any) -> None:
        """Add the surveys hookspec."""
        pm.add_hookspecs(SurveysSpec)


def low_score(response_id: int, customer_id: int, when: Any) -> dict[str, Any]:
    """A payload of surveys_low_score."""
    return {
        "response_id": response_id,
        "survey_id": 1,
        "survey_key": "nps-q4",
        "survey_version": 2,
        "customer_id": customer_id,
        "metric": "nps",
        "score": 3.0,
        "threshold": 6.0,
        "answered_at": when,
        "comment": "Slow delivery",
    }


def test_low_survey_scores_open_one_follow_up_each(
    open_crm: Callable[..., CRM], clock: FrozenClock
) -> None:
    """Each response opens one follow-up in the configured category, idempotent per response."""
    crm = open_crm(
        {"survey_followup": {"category": "service/waiting_time", "severity": "high"}},
        extra=[FakeSurveys()],
    )
    customer = crm.customers.create({"name": "Flo"}).id
    assert customer
    batch = [low_score(10, customer, clock()), low_score(11, customer, clock())]
    with crm.unit_of_work("surveys") as uow:
        crm.call_hook("surveys_low_score", ctx=uow, responses=batch)
    with crm.unit_of_work("surveys") as uow:
        crm.call_hook("surveys_low_score", ctx=uow, responses=[batch[0], batch[0]])
    opened = ComplaintService(crm).list().items
    assert sorted(c.source_ref or "" for c in opened) == ["10", "11"]
    assert {(c.category, c.severity.value, c.source) for c in opened} == {
        ("service/waiting_time", "high", "survey")
    }
    assert "Slow delivery" in (opened[0].description or "")


def test_followups_can_be_switched_off(open_crm: Callable[..., CRM], clock: FrozenClock) -> None:
    """survey_followup.enabled = false opens nothing."""
    crm = open_crm({"survey_followup": {"enabled": False}}, extra=[FakeSurveys()])
    customer = crm.customers.create({"name": "Gus"}).id
    assert customer
    with crm.unit_of_work() as uow:
        crm.call_hook("surveys_low_score", ctx=uow, responses=[low_score(1, customer, clock())])
    assert ComplaintService(crm).list().total == 0


# --- views and privacy --------------------------------------------------------------------


def test_profile_churn_signals_export_and_erase(
    ccrm: CRM, service: ComplaintService, customer: int, clock: FrozenClock
) -> None:
    """The 360° section, churn signals, export, and an erasure that leaves nothing personal."""
    first = service.open(
        {
            "customer_id": customer,
            "category": "delivery/late",
            "description": "my flat at 5 Main St",
        }
    )
    clock.advance(days=1)
    service.resolve(
        first.id,
        resolution="called Ada at home",
        compensations=[{"kind": "points", "points": 10, "reason": "Ada was upset"}],
    )
    service.open({"customer_id": customer, "category": "delivery/late", "reference": "ORD-9"})
    section = ccrm.customers.profile(customer)["plugins"]["complaints"]
    assert (section["total"], section["open"], section["recurrences"]) == (2, 1, 1)
    signals = ccrm.churn_signals([customer])
    assert sorted((s.source, s.weight) for s in signals) == [
        ("complaints", 0.6),
        ("complaints", 0.7),
    ]
    exported = ccrm.customers.export(customer)["plugins"]["complaints"]["complaints"]
    assert [len(c["history"]) for c in exported] == [2, 1]
    assert exported[0]["compensations"][0]["points"] == 10
    json.dumps(exported)

    ccrm.customers.erase(customer)
    text = json.dumps(
        [
            rows(ccrm, t)
            for t in (
                "complaints_cases",
                "complaints_history",
                "complaints_compensations",
                "complaints_breaches",
            )
        ],
        default=str,
    )
    for secret in ("Main St", "Ada", "ORD-9", f'"customer_id": {customer}'):
        assert secret not in text
    assert len(rows(ccrm, "complaints_cases")) == 2  # anonymous aggregates stay
    assert "complaints" not in ccrm.customers.export(customer)["plugins"]
    assert ccrm.churn_signals([customer]) == []


def test_deleting_a_customer_deletes_their_complaints(
    ccrm: CRM, service: ComplaintService, customer: int
) -> None:
    """crm_customers_deleted removes the cases and, by cascade, their history."""
    service.open({"customer_id": customer, "category": "other"})
    ccrm.customers.delete(customer)
    assert rows(ccrm, "complaints_cases") == [] and rows(ccrm, "complaints_history") == []


# --- configuration and registration -------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"sla": {"high": {"first_response_hours": 10, "resolution_hours": 5}}},
            "plugins.complaints.sla.high.resolution_hours: 5 is shorter",
        ),
        ({"sla": {"low": {"first_response_hours": 0}}}, "plugins.complaints.sla.low"),
        ({"colour": "red"}, "plugins.complaints"),
        ({"survey_followup": {"category": "nowhere"}}, "survey_followup.category: 'nowhere'"),
    ],
)
def test_bad_config_refuses_to_open(
    crm_factory: Callable[..., CRM], section: dict[str, Any], message: str
) -> None:
    """Invalid sections are ConfigErrors naming the field."""
    with pytest.raises(ConfigError, match=message):
        crm_factory(plugins=[crmcore_complaints.plugin], plugin_sections={"complaints": section})


def test_configured_targets_apply(open_crm: Callable[..., CRM], clock: FrozenClock) -> None:
    """sla.<severity> overrides the defaults, in hours."""
    crm = open_crm({"sla": {"low": {"first_response_hours": 1.5, "resolution_hours": 3}}})
    customer = crm.customers.create({"name": "Hal"}).id
    assert customer
    complaint = ComplaintService(crm).open(
        {"customer_id": customer, "category": "other", "severity": "low"}
    )
    assert complaint.first_response_target_seconds == 5400
    assert complaint.resolution_due_at == clock() + timedelta(hours=3)


def test_tables_are_created_by_the_branch(ccrm: CRM) -> None:
    """The alembic branch creates the four tables."""
    names = set(sa.inspect(ccrm.engine).get_table_names())
    assert {
        "complaints_cases",
        "complaints_history",
        "complaints_compensations",
        "complaints_breaches",
    } <= names


def test_open_many_is_batch_first(ccrm: CRM, service: ComplaintService) -> None:
    """Opening 1200 complaints touches complaints_cases a constant number of times per batch."""
    customers = ccrm.customers.create_many({"name": f"C{i}"} for i in range(40))
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "complaints_cases" in statement:
            statements.append(statement)

    items = [
        {"customer_id": customers[i % 40].id, "category": "delivery/late"} for i in range(1200)
    ]
    sa.event.listen(ccrm.engine, "before_cursor_execute", count)
    try:
        opened = service.open_many(items, batch_size=500)
    finally:
        sa.event.remove(ccrm.engine, "before_cursor_execute", count)
    assert len(opened) == 1200
    # 3 batches; allocate, recurrence read, insert (+pg seq), one audit batch entry
    assert len(statements) <= 3 * 5
    assert sum(c.recurrence_of is not None for c in opened) == 1200 - 40


# --- command line -------------------------------------------------------------------------


def invoke(args: list[str]) -> Any:
    """Run ``crm`` as its entry point does."""
    return CliRunner().invoke(build_cli(args), args, catch_exceptions=False)


def test_cli_round_trip(sqlite_url: str, tmp_path: Path) -> None:
    """open, move, resolve, show, list, sweep, report; an illegal move is one line, exit 1."""
    with CRM.open(sqlite_url, upgrade=True) as crm:
        customer: Customer = crm.customers.create({"name": "Ivy"})
    db = ["--db", sqlite_url, "--actor", "cli-agent"]
    result = invoke(
        [
            *db,
            "complaints",
            "open",
            "--customer",
            str(customer.id),
            "--category",
            "delivery/late",
            "--severity",
            "high",
            "--json",
        ]
    )
    assert result.exit_code == 0, result.output
    cid = json.loads(result.stdout)["id"]
    assert invoke([*db, "complaints", "assign", str(cid), "ann"]).exit_code == 0
    assert invoke([*db, "complaints", "move", str(cid), "in_progress"]).exit_code == 0
    bad = invoke([*db, "complaints", "move", str(cid), "closed"])
    assert bad.exit_code == 1
    assert bad.stderr.strip().startswith("Error: state: complaint")
    assert len(bad.stderr.strip().splitlines()) == 1
    result = invoke(
        [
            *db,
            "complaints",
            "resolve",
            str(cid),
            "--resolution",
            "re-sent",
            "--root-cause",
            "logistics",
            "--points",
            "50",
        ]
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(invoke([*db, "complaints", "show", str(cid), "--json"]).stdout)
    assert shown["complaint"]["state"] == "resolved"
    assert [h["actor"] for h in shown["history"]] == ["cli-agent"] * 4
    assert shown["compensations"][0]["points"] == 50
    listed = json.loads(invoke([*db, "complaints", "list", "--json"]).stdout)
    assert listed["total"] == 1
    assert json.loads(invoke([*db, "complaints", "sweep", "--json"]).stdout) == []
    report = json.loads(invoke([*db, "complaints", "report", "--json"]).stdout)
    assert report["kpis"]["complaints_opened"] == 1
    assert "top categories" in invoke([*db, "complaints", "report"]).stdout
    path = tmp_path / "in.csv"
    path.write_text(f"customer_id,category\n{customer.id},other\n{customer.id},billing\n")
    assert invoke([*db, "complaints", "import", str(path)]).exit_code == 0
    assert json.loads(invoke([*db, "complaints", "list", "--json"]).stdout)["total"] == 3
