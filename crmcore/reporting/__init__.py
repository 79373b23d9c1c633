"""Value types of the performance report (``crm report``) that plugins contribute to."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from attrs import field, frozen

ChartKind = Literal["line", "bar", "heatmap", "scatter"]


def _labels(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(str(v) for v in value)


def _rows(value: Iterable[Iterable[float | None]]) -> tuple[tuple[float | None, ...], ...]:
    return tuple(tuple(row) for row in value)


def _points(value: Iterable[Sequence[Any]]) -> tuple[tuple[str, float, float], ...]:
    return tuple((str(label), float(x), float(y)) for label, x, y in value)


def _floats(value: Iterable[float]) -> tuple[float, ...]:
    return tuple(float(v) for v in value)


def _series(value: Mapping[str, Iterable[float | None]]) -> dict[str, tuple[float | None, ...]]:
    return {str(name): tuple(values) for name, values in value.items()}


@frozen
class ReportChart:
    """One chart of the report's HTML page (and a data block of its JSON).

    * ``line`` / ``bar``: ``x_labels`` along the x axis and ``series`` mapping
      a series name to one value per x label (``None`` for a gap).
    * ``heatmap``: ``values[row][column]`` with ``y_labels`` naming rows and
      ``x_labels`` naming columns (a cohort matrix, an RFM grid).
    * ``scatter``: ``points``, each ``(label, x, y)``; ``axes`` names the x and the
      y axis; ``guides``, when given as ``(x, y)``, draws a vertical line at x and a
      horizontal one at y (the quadrants of an importance-performance grid).
      ``x_labels`` may stay empty.

    ``source`` is filled in by core with the contributing plugin's name.
    """

    title: str
    kind: ChartKind
    x_labels: tuple[str, ...] = field(converter=_labels)
    series: dict[str, tuple[float | None, ...]] = field(factory=dict, converter=_series)
    y_labels: tuple[str, ...] = field(default=(), converter=_labels)
    values: tuple[tuple[float | None, ...], ...] = field(default=(), converter=_rows)
    unit: str | None = None
    note: str | None = None
    source: str = "core"
    points: tuple[tuple[str, float, float], ...] = field(default=(), converter=_points)
    axes: tuple[str, ...] = field(default=(), converter=_labels)
    guides: tuple[float, ...] = field(default=(), converter=_floats)
