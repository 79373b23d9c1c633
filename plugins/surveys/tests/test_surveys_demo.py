"""The surveys part of ``crm demo`` (issue 14's demo fix, issue 18's B2B template fix).

The demo's invitations are sent at the start of the demo year, before the responses
they get, so ``crm report`` over the demo year counts the same invitations and the
same response rate as ``crm surveys report``. In process on SQLite and PostgreSQL,
and through ``crm demo`` itself.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import crmcore_surveys.plugin
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from crmcore_surveys import catalog, distribution, scoring
from crmcore_surveys.demo import run_demo
from crmcore_surveys.tables import invitations_table, responses_table
from crmcore_surveys.templates import B2B_V1, TEMPLATE_VERSIONS, template
from rich.console import Console

from crmcore import CRM, NotFoundError, Period, ValidationError
from crmcore.cli import build_cli
from crmcore.io.demo import DEMO_NOW, load_demo
from crmcore.pytest_plugin import CRMFactory
from crmcore.reporting.report import build_report
from crmcore.testing import FrozenClock

YEAR = Period(DEMO_NOW - timedelta(days=365), DEMO_NOW)
KEYS = ("nps", "satisfaction", "b2b")


@pytest.fixture
def demo(crm_factory: CRMFactory, clock: FrozenClock) -> tuple[CRM, str]:
    """The core demo data (150 customers) and the surveys demo on top, with what it printed."""
    clock.set(DEMO_NOW)
    crm = crm_factory(plugins=[crmcore_surveys.plugin])
    load_demo(crm, seed=7, customers=150)
    out = io.StringIO()
    run_demo(crm, 7, Console(file=out, width=200))
    return crm, out.getvalue()


def test_report_and_surveys_report_agree(demo: tuple[CRM, str]) -> None:
    """crm report's invitations and response rate are those of the surveys' own reports."""
    crm, _ = demo
    section = build_report(crm, YEAR, charts=False)["sections"]["surveys"]
    reports = [scoring.survey_report(crm, key, trend=None, bootstrap=0) for key in KEYS]
    sent = sum(r["invitations"] for r in reports)
    answered = sum(r["invitations_answered"] for r in reports)
    assert sent > 0 and section["invitations_sent"]["value"] == sent
    assert section["response_rate_pct"]["value"] == pytest.approx(100 * answered / sent)
    assert section["responses"]["value"] == sum(r["responses"] for r in reports)
    for key, whole in zip(KEYS, reports, strict=True):
        in_year = scoring.survey_report(crm, key, period=YEAR, trend=None, bootstrap=0)
        assert in_year["invitations"] == whole["invitations"]
        assert in_year["response_rate"] == whole["response_rate"]
    nps = reports[0]
    assert nps["response_rate"]["value"] == pytest.approx(
        100 * nps["invitations_answered"] / nps["invitations"]
    )


def test_every_response_comes_after_its_invitation(demo: tuple[CRM, str]) -> None:
    """Invitations are stamped inside the demo year, before their responses."""
    crm, _ = demo
    invitations, responses = invitations_table(crm.metadata), responses_table(crm.metadata)
    with crm.engine.connect() as conn:
        rows = conn.execute(
            sa.select(invitations.c.sent_at, responses.c.answered_at).join(
                responses, responses.c.invitation_id == invitations.c.id
            )
        ).all()
        first, last = conn.execute(
            sa.select(sa.func.min(invitations.c.sent_at), sa.func.max(invitations.c.sent_at))
        ).one()
    assert rows and all(_utc(sent) <= _utc(answered) for sent, answered in rows)
    assert YEAR.start <= _utc(first) and _utc(last) < YEAR.end


def test_b2b_assessment_moves_to_the_new_template_version(demo: tuple[CRM, str]) -> None:
    """Version 1 keeps its wording and its responses; version 2 asks the recognition item."""
    crm, printed = demo
    old = catalog.get_survey(crm, "b2b", 1).definition.question("acceptance")
    new = catalog.get_survey(crm, "b2b", 2).definition.question("acceptance")
    assert old is not None and new is not None
    assert old.text == "We value and recognise your company as a partner."
    assert "products and services" in new.text
    assert new.text == template("b2b")["questions"][1]["text"]
    assert TEMPLATE_VERSIONS["b2b"] == 2
    report = scoring.survey_report(crm, "b2b", by="version", trend=None, bootstrap=0)
    groups = {g["group"]: g["responses"] for g in report["breakdown"]["groups"]}
    assert groups["1"] > 0 and groups["2"] > 0
    assert new.text in printed and old.text in printed
    assert "relative importance" in printed and "importance-performance grid" in printed


def test_template_versions(scrm: CRM) -> None:
    """template(name, version) returns an edition; updating an answered survey keeps the old."""
    assert template("b2b", version=1) == dict(B2B_V1)
    assert template("b2b", version=2) == template("b2b")
    with pytest.raises(NotFoundError, match=r"has no version 3; its versions are 1, 2"):
        template("b2b", version=3)
    catalog.create_survey(scrm, template("b2b", version=1))
    same = catalog.update_survey(scrm, template("b2b"))
    assert same.version == 1  # unanswered: replaced in place
    acceptance = same.definition.question("acceptance")
    assert acceptance is not None and acceptance.text == template("b2b")["questions"][1]["text"]


def test_crm_demo_prints_agreeing_figures(tmp_path: Path) -> None:
    """Through the command line: crm report --json and crm surveys report --json agree."""
    path = tmp_path / "demo.db"
    runner = CliRunner()
    made = runner.invoke(build_cli(), ["demo", "--path", str(path), "--customers", "80"])
    assert made.exit_code == 0, made.output
    assert "Your company recognises the value of our products and services." in made.stdout
    span = ["--from", str(YEAR.start.date()), "--to", str(YEAR.end.date())]
    core = runner.invoke(build_cli(), ["--db", str(path), "report", *span, "--json"])
    assert core.exit_code == 0, core.output
    section = json.loads(core.stdout)["sections"]["surveys"]
    sent = answered = 0
    for key in KEYS:
        shown = runner.invoke(
            build_cli(),
            ["--db", str(path), "surveys", "report", key, "--bootstrap", "0", "--json"],
        )
        assert shown.exit_code == 0, shown.output
        data = json.loads(shown.stdout)
        sent += data["invitations"]
        answered += data["invitations_answered"]
    assert section["invitations_sent"]["value"] == sent > 0
    assert section["response_rate_pct"]["value"] == pytest.approx(100 * answered / sent)


def _utc(value: object) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def test_invite_sent_at(scrm: CRM, people: list[int]) -> None:
    """invite(sent_at=...) stamps the invitations; naive or future moments are refused."""
    catalog.create_survey(scrm, template("nps"))
    now = scrm.clock()
    with pytest.raises(ValidationError, match=r"^sent_at: .* is in the future"):
        distribution.invite(scrm, "nps", sent_at=now + timedelta(seconds=1))
    with pytest.raises(ValidationError, match=r"^sent_at: must be a timezone-aware"):
        distribution.invite(scrm, "nps", sent_at=datetime(2025, 1, 1))
    earlier = now - timedelta(days=30)
    result = distribution.invite(scrm, "nps", sent_at=earlier)
    assert result.invitations
    month = Period(earlier, earlier + timedelta(days=1))
    assert scoring.survey_report(scrm, "nps", period=month, trend=None)["invitations"] == len(
        result.invitations
    )
