"""The performance report: core figures, plugin KPIs and charts, previous-period comparison."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crmcore import CRM, Period
from crmcore.cli import build_cli
from crmcore.hooks import hookimpl
from crmcore.pytest_plugin import CRMFactory
from crmcore.reporting import ReportChart
from crmcore.reporting.report import build_report, compare
from crmcore.reporting.report_html import render_html

JAN = Period(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))


class Kpis:
    crm_plugin_name = "kpis"

    @hookimpl
    def crm_metrics(self, crm: CRM, period: Period) -> dict[str, Any]:
        return {"days": (period.end - period.start).days}

    @hookimpl
    def crm_report_charts(self, crm: CRM, period: Period) -> list[ReportChart]:
        return [
            ReportChart(
                "Grid <R x F>", "heatmap", ["F1", "F2"], y_labels=["R1"], values=[[1, None]]
            )
        ]


def test_compare() -> None:
    assert compare(310, 0) == {"value": 310, "previous": 0, "change": "310", "change_pct": None}
    assert compare("12.50", "10")["change"] == "2.5"
    assert compare(5, 10)["change_pct"] == -50.0
    assert compare(None, 3)["change"] is None


def test_report_compares_with_previous_period(crm_factory: CRMFactory) -> None:
    crm = crm_factory(plugins=[Kpis()])
    crm.clock.set(datetime(2025, 12, 15, tzinfo=UTC))  # type: ignore[attr-defined]
    old = crm.customers.create({"name": "Old"})
    crm.clock.set(datetime(2026, 1, 10, tzinfo=UTC))  # type: ignore[attr-defined]
    new = crm.customers.create({"name": "New"})
    for cid, day, amount in ((old.id, 20, "10"), (old.id, 2, "5.5"), (new.id, 12, "100")):
        month = 12 if day == 20 else 1
        year = 2025 if month == 12 else 2026
        crm.interactions.record(
            {
                "customer_id": cid,
                "kind": "purchase",
                "amount": amount,
                "currency": "EUR",
                "occurred_at": datetime(year, month, day, tzinfo=UTC).isoformat(),
            }
        )
    report = build_report(crm, JAN)
    core = report["sections"]["core"]
    assert core["new_customers"] == {"value": 1, "previous": 1, "change": "0", "change_pct": 0.0}
    assert core["revenue.EUR"]["value"] == "105.5" and core["revenue.EUR"]["previous"] == "10"
    assert core["purchases"]["value"] == 2 and core["purchases"]["previous"] == 1
    assert core["customers"]["value"] == 2 and core["customers"]["previous"] == 1
    assert report["sections"]["kpis"]["days"] == {
        "value": 31,
        "previous": 31,
        "change": "0",
        "change_pct": 0.0,
    }
    titles = [c["title"] for c in report["charts"]]
    assert titles[:3] == ["Revenue per month", "Customers per month", "Interactions per month"]
    revenue = report["charts"][0]
    assert revenue["x_labels"][-2:] == ["2025-12", "2026-01"]
    assert revenue["series"]["EUR"][-2:] == [10.0, 105.5]
    assert report["charts"][-1]["source"] == "kpis"
    page = render_html(report)
    assert page.startswith("<!doctype html>") and "Grid &lt;R x F&gt;" in page
    assert "<script" not in page and "http" not in page  # self-contained


def test_report_cli(tmp_path: Path, db_url: str) -> None:
    runner = CliRunner()
    assert runner.invoke(build_cli(), ["--db", db_url, "init"]).exit_code == 0
    html = tmp_path / "r.html"
    result = runner.invoke(
        build_cli(),
        [
            "--db",
            db_url,
            "report",
            "--from",
            "2026-01-01",
            "--to",
            "2026-02-01",
            "--json",
            "--html",
            str(html),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["period"]["start"] == "2026-01-01T00:00:00+00:00"
    assert "core" in data["sections"] and html.read_text().count("<figure>") >= 3
    bad = runner.invoke(
        build_cli(), ["--db", db_url, "report", "--from", "2026-02-01", "--to", "2026-01-01"]
    )
    assert bad.exit_code == 1 and "is not after start" in bad.output
    half = runner.invoke(build_cli(), ["--db", db_url, "report", "--from", "2026-02-01"])
    assert half.exit_code == 1 and "give both" in half.output


def test_plugin_returning_wrong_chart_type(crm_factory: CRMFactory) -> None:
    from crmcore import PluginError

    class Broken:
        crm_plugin_name = "broken"

        @hookimpl
        def crm_report_charts(self, crm: CRM, period: Period) -> list[object]:
            return ["not a chart"]

    crm = crm_factory(plugins=[Broken()])
    with pytest.raises(PluginError, match="broken"):
        build_report(crm, JAN)


def test_scatter_chart_data_and_page() -> None:
    chart = ReportChart(
        "IPA <grid>",
        "scatter",
        (),
        points=[("price", 58.3, 8.7), ("quality", "70.8", 31.3)],
        axes=("performance", "importance"),
        guides=(61.7, 20),
    )
    assert chart.points[1] == ("quality", 70.8, 31.3) and chart.guides == (61.7, 20.0)
    report = {
        "period": {"start": "a", "end": "b"},
        "previous_period": {"start": "c", "end": "d"},
        "sections": {},
        "charts": [
            {
                "title": chart.title,
                "kind": chart.kind,
                "source": "surveys",
                "points": [list(p) for p in chart.points],
                "axes": list(chart.axes),
                "guides": list(chart.guides),
                "note": None,
            }
        ],
    }
    page = render_html(report)
    assert page.count("<circle") == 2 and "IPA &lt;grid&gt;" in page
    assert "stroke-dasharray" in page and ">importance<" in page
