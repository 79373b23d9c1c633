"""The performance report: core figures and every plugin's KPIs, against the previous period.

``build_report(crm, period)`` returns JSON-safe data; :mod:`crmcore.reporting.report_html`
renders it as a self-contained HTML page and ``crm report`` prints it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import attrs

from crmcore.errors import PluginError
from crmcore.model.signals import Period
from crmcore.reporting import ReportChart

if TYPE_CHECKING:
    from crmcore.app import CRM

#: How many months the core trend charts cover, ending with the report's period.
TREND_MONTHS = 12


def flatten(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested metric mappings as one level with dotted names (``revenue.EUR``)."""
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _plain(value: Decimal) -> str:
    """A Decimal as plain digits (``normalize()`` alone would print 310 as ``3.1E+2``)."""
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return format(value.normalize(), "f")


def compare(current: Any, previous: Any) -> dict[str, Any]:
    """A metric's value, its previous value, the change and the relative change in %."""
    now, before = _number(current), _number(previous)
    change = None if now is None or before is None else now - before
    pct = None
    if change is not None and before:
        pct = float(round(change / abs(before) * 100, 2))
    return {
        "value": current,
        "previous": previous,
        "change": None if change is None else _plain(change),
        "change_pct": pct,
    }


def _month_start(moment: datetime) -> datetime:
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def core_trend_charts(crm: CRM, period: Period) -> list[ReportChart]:
    """Monthly trends over the last :data:`TREND_MONTHS` months up to the period's end."""
    last = _month_start(period.end - timedelta(microseconds=1))
    months = [_add_months(last, -i) for i in reversed(range(TREND_MONTHS))]
    figures = [crm.metrics(Period(m, _add_months(m, 1)))["core"] for m in months]
    labels = [m.strftime("%Y-%m") for m in months]
    currencies = sorted({c for f in figures for c in f["revenue"]})
    return [
        ReportChart(
            title="Revenue per month",
            kind="line",
            x_labels=labels,
            series={c: tuple(float(f["revenue"].get(c, 0)) for f in figures) for c in currencies},
            unit="currency",
        ),
        ReportChart(
            title="Customers per month",
            kind="line",
            x_labels=labels,
            series={
                "new customers": tuple(float(f["new_customers"]) for f in figures),
                "active customers": tuple(float(f["active_customers"]) for f in figures),
            },
        ),
        ReportChart(
            title="Interactions per month",
            kind="bar",
            x_labels=labels,
            series={"interactions": tuple(float(f["interactions"]) for f in figures)},
        ),
    ]


def _plugin_charts(crm: CRM, period: Period) -> list[ReportChart]:
    charts: list[ReportChart] = []
    for plugin, answer in crm.collect("crm_report_charts", crm=crm, period=period).items():
        for chart in answer:
            if not isinstance(chart, ReportChart):
                raise PluginError(f"plugin {plugin!r}: crm_report_charts returned {chart!r}")
            charts.append(attrs.evolve(chart, source=plugin))
    return charts


def build_report(crm: CRM, period: Period, *, charts: bool = True) -> dict[str, Any]:
    """Everything ``crm report`` shows, JSON-safe.

    ``sections`` maps ``core`` and each plugin to ``{metric: comparison}``
    (see :func:`compare`); ``charts`` holds the core trend charts and every
    plugin's ``crm_report_charts``.
    """
    previous = period.previous()
    now_metrics = crm.metrics(period)
    before_metrics = crm.metrics(previous)
    sections: dict[str, dict[str, Any]] = {}
    for source in now_metrics.keys() | before_metrics.keys():
        current = flatten(now_metrics.get(source, {}))
        earlier = flatten(before_metrics.get(source, {}))
        sections[source] = {
            name: compare(current.get(name), earlier.get(name))
            for name in sorted(current.keys() | earlier.keys())
        }
    ordered = {"core": sections.pop("core", {}), **dict(sorted(sections.items()))}
    report: dict[str, Any] = {
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "previous_period": {"start": previous.start.isoformat(), "end": previous.end.isoformat()},
        "sections": ordered,
        "charts": [],
    }
    if charts:
        all_charts = core_trend_charts(crm, period) + _plugin_charts(crm, period)
        report["charts"] = [_chart_data(c) for c in all_charts]
    return report


def _chart_data(chart: ReportChart) -> dict[str, Any]:
    return {
        "title": chart.title,
        "kind": chart.kind,
        "source": chart.source,
        "x_labels": list(chart.x_labels),
        "series": {k: list(v) for k, v in chart.series.items()},
        "y_labels": list(chart.y_labels),
        "values": [list(row) for row in chart.values],
        "unit": chart.unit,
        "note": chart.note,
        "points": [list(point) for point in chart.points],
        "axes": list(chart.axes),
        "guides": list(chart.guides),
    }
