"""Rendering the performance report as one self-contained HTML page (inline CSS and SVG)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

_PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563"]
_W, _H, _PAD = 640, 240, 40

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:980px;color:#111827;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{margin-top:2rem;border-bottom:1px solid #e5e7eb}
.muted{color:#6b7280} table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{padding:.3rem .6rem;border-bottom:1px solid #f3f4f6;text-align:right}
th:first-child,td:first-child{text-align:left} .up{color:#15803d} .down{color:#b91c1c}
figure{margin:1.2rem 0} figcaption{font-weight:600;margin-bottom:.3rem}
svg text{font-size:10px;fill:#374151}
"""


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return escape(str(value))


def _metrics_table(rows: Mapping[str, Mapping[str, Any]]) -> str:
    body = []
    for name, row in rows.items():
        pct = row.get("change_pct")
        css = "" if pct is None else ("up" if pct > 0 else "down" if pct < 0 else "")
        pct_text = "-" if pct is None else f"{pct:+.2f}%"
        body.append(
            f"<tr><td>{escape(name)}</td><td>{_fmt(row.get('value'))}</td>"
            f"<td>{_fmt(row.get('previous'))}</td><td class='{css}'>{_fmt(row.get('change'))}</td>"
            f"<td class='{css}'>{pct_text}</td></tr>"
        )
    return (
        "<table><tr><th>metric</th><th>this period</th><th>previous</th><th>change</th>"
        f"<th>%</th></tr>{''.join(body)}</table>"
    )


def _scale(values: Sequence[float], low: float, high: float) -> list[float]:
    span = (high - low) or 1.0
    return [(v - low) / span for v in values]


def _line_or_bar(chart: Mapping[str, Any]) -> str:
    labels: list[str] = chart["x_labels"]
    series: dict[str, list[float | None]] = chart["series"]
    numbers = [v for values in series.values() for v in values if v is not None]
    if not labels or not numbers:
        return "<p class='muted'>no data</p>"
    high, low = max(numbers), min(0.0, min(numbers))
    step = (_W - 2 * _PAD) / max(len(labels) - (0 if chart["kind"] == "bar" else 1), 1)
    parts = [f"<svg viewBox='0 0 {_W} {_H + 30}' width='100%' role='img'>"]
    parts.append(f"<line x1='{_PAD}' y1='{_H}' x2='{_W - _PAD}' y2='{_H}' stroke='#9ca3af'/>")
    parts.append(
        f"<text x='2' y='{_PAD - 8}'>{high:,.0f}</text><text x='2' y='{_H}'>{low:,.0f}</text>"
    )
    for i, label in enumerate(labels):
        x = _PAD + i * step + (step / 2 if chart["kind"] == "bar" else 0)
        parts.append(f"<text x='{x:.1f}' y='{_H + 14}' text-anchor='middle'>{escape(label)}</text>")
    width = step / (len(series) + 1)
    for k, (name, values) in enumerate(series.items()):
        colour = _PALETTE[k % len(_PALETTE)]
        points = []
        for i, value in enumerate(values):
            if value is None:
                continue
            y = _H - _scale([value], low, high)[0] * (_H - _PAD)
            if chart["kind"] == "bar":
                x = _PAD + i * step + width * (k + 0.5)
                parts.append(
                    f"<rect x='{x:.1f}' y='{y:.1f}' width='{width:.1f}' height='{_H - y:.1f}' "
                    f"fill='{colour}'><title>{escape(name)} {escape(labels[i])}: "
                    f"{value:,.2f}</title></rect>"
                )
            else:
                points.append(f"{_PAD + i * step:.1f},{y:.1f}")
        if points:
            parts.append(
                f"<polyline fill='none' stroke='{colour}' stroke-width='2' "
                f"points='{' '.join(points)}'/>"
            )
        parts.append(
            f"<text x='{_W - _PAD + 4}' y='{_PAD + 12 * k}' fill='{colour}' style='fill:{colour}'>"
            f"{escape(name)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _heatmap(chart: Mapping[str, Any]) -> str:
    rows: list[list[float | None]] = chart["values"]
    xs: list[str] = chart["x_labels"]
    ys: list[str] = chart["y_labels"]
    numbers = [v for row in rows for v in row if v is not None]
    if not rows or not numbers:
        return "<p class='muted'>no data</p>"
    low, high = min(numbers), max(numbers)
    cell_w = min(56.0, (_W - 80) / max(len(xs), 1))
    cell_h = 22.0
    height = 30 + cell_h * len(rows)
    parts = [
        f"<svg viewBox='0 0 {80 + cell_w * len(xs):.0f} {height:.0f}' width='100%' role='img'>"
    ]
    for j, label in enumerate(xs):
        x = 80 + j * cell_w + cell_w / 2
        parts.append(f"<text x='{x:.1f}' y='14' text-anchor='middle'>{escape(label)}</text>")
    for i, row in enumerate(rows):
        y = 22 + i * cell_h
        label = ys[i] if i < len(ys) else str(i)
        parts.append(f"<text x='2' y='{y + cell_h * 0.65:.1f}'>{escape(label)}</text>")
        for j, value in enumerate(row):
            x = 80 + j * cell_w
            if value is None:
                continue
            shade = _scale([value], low, high)[0]
            fill = f"rgba(37,99,235,{0.08 + 0.85 * shade:.2f})"
            ink = "#fff" if shade > 0.55 else "#111827"
            parts.append(
                f"<rect x='{x:.1f}' y='{y:.1f}' width='{cell_w - 1:.1f}' height='{cell_h - 1:.1f}' "
                f"fill='{fill}'/><text x='{x + cell_w / 2:.1f}' y='{y + cell_h * 0.65:.1f}' "
                f"text-anchor='middle' style='fill:{ink}'>{value:,.1f}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _scatter(chart: Mapping[str, Any]) -> str:
    points: list[list[Any]] = chart.get("points", [])
    if not points:
        return "<p class='muted'>no data</p>"
    axes: list[str] = chart.get("axes", [])
    guides: list[float] = chart.get("guides", [])
    xs = [float(p[1]) for p in points] + guides[:1]
    ys = [float(p[2]) for p in points] + guides[1:2]
    x_low, x_high = min(xs), max(xs)
    y_low, y_high = min(ys), max(ys)
    x_pad, y_pad = (x_high - x_low) * 0.08 or 1.0, (y_high - y_low) * 0.08 or 1.0
    x_low, x_high, y_low, y_high = x_low - x_pad, x_high + x_pad, y_low - y_pad, y_high + y_pad
    left, right, top, bottom = _PAD + 10, _W - 150, 24, _H

    def at(x: float, y: float) -> tuple[float, float]:
        return (
            left + _scale([x], x_low, x_high)[0] * (right - left),
            bottom - _scale([y], y_low, y_high)[0] * (bottom - top),
        )

    parts = [f"<svg viewBox='0 0 {_W} {_H + 40}' width='100%' role='img'>"]
    parts.append(
        f"<rect x='{left}' y='{top}' width='{right - left}' height='{bottom - top}' "
        "fill='none' stroke='#9ca3af'/>"
    )
    if len(guides) == 2:
        gx, gy = at(guides[0], guides[1])
        parts.append(
            f"<line x1='{gx:.1f}' y1='{top}' x2='{gx:.1f}' y2='{bottom}' stroke='#9ca3af' "
            f"stroke-dasharray='4 3'/><line x1='{left}' y1='{gy:.1f}' x2='{right}' "
            f"y2='{gy:.1f}' stroke='#9ca3af' stroke-dasharray='4 3'/>"
        )
    parts.append(
        f"<text x='{left}' y='{bottom + 14}'>{x_low:,.1f}</text>"
        f"<text x='{right}' y='{bottom + 14}' text-anchor='end'>{x_high:,.1f}</text>"
        f"<text x='2' y='{bottom}'>{y_low:,.1f}</text>"
        f"<text x='2' y='{top + 8}'>{y_high:,.1f}</text>"
    )
    if axes:
        parts.append(
            f"<text x='{(left + right) / 2:.1f}' y='{bottom + 30}' text-anchor='middle'>"
            f"{escape(axes[0])}</text>"
        )
    if len(axes) > 1:
        parts.append(f"<text x='{left}' y='{top - 8}'>{escape(axes[1])}</text>")
    for k, (label, x, y) in enumerate(points):
        px, py = at(float(x), float(y))
        colour = _PALETTE[k % len(_PALETTE)]
        parts.append(
            f"<circle cx='{px:.1f}' cy='{py:.1f}' r='4' fill='{colour}'><title>"
            f"{escape(str(label))}: {float(x):,.2f}, {float(y):,.2f}</title></circle>"
            f"<text x='{px + 6:.1f}' y='{py + 3:.1f}'>{escape(str(label))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: Mapping[str, Any], *, title: str = "CRM performance report") -> str:
    """The report as a complete HTML document with no external resources."""
    period, previous = report["period"], report["previous_period"]
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p class='muted'>Period {escape(period['start'])} to {escape(period['end'])}, "
        "compared with "
        f"{escape(previous['start'])} to {escape(previous['end'])}.</p>",
    ]
    for source, rows in report["sections"].items():
        out.append(f"<h2>{escape(source)}</h2>")
        out.append(_metrics_table(rows) if rows else "<p class='muted'>no figures</p>")
    if report["charts"]:
        out.append("<h2>Charts</h2>")
    for chart in report["charts"]:
        if chart["kind"] == "heatmap":
            body = _heatmap(chart)
        elif chart["kind"] == "scatter":
            body = _scatter(chart)
        else:
            body = _line_or_bar(chart)
        note = f"<div class='muted'>{escape(chart['note'])}</div>" if chart.get("note") else ""
        out.append(
            f"<figure><figcaption>{escape(chart['title'])} "
            f"<span class='muted'>({escape(chart['source'])})</span></figcaption>"
            f"{body}{note}</figure>"
        )
    out.append("</body></html>")
    return "\n".join(out)
