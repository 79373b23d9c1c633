"""Value types of the performance report (``crm report``) that plugins contribute to."""

from __future__ import annotations

from typing import Literal

from attrs import field, frozen

ChartKind = Literal["line", "bar", "heatmap"]


@frozen
class ReportChart:
    """One chart of the report's HTML page (and a data block of its JSON).

    * ``line`` / ``bar``: ``x_labels`` along the x axis and ``series`` mapping
      a series name to one value per x label (``None`` for a gap).
    * ``heatmap``: ``values[row][column]`` with ``y_labels`` naming rows and
      ``x_labels`` naming columns (a cohort matrix, an RFM grid).

    ``source`` is filled in by core with the contributing plugin's name.
    """

    title: str
    kind: ChartKind
    x_labels: tuple[str, ...] = field(converter=tuple)
    series: dict[str, tuple[float | None, ...]] = field(factory=dict)
    y_labels: tuple[str, ...] = field(default=(), converter=tuple)
    values: tuple[tuple[float | None, ...], ...] = field(default=(), converter=tuple)
    unit: str | None = None
    note: str | None = None
    source: str = "core"
