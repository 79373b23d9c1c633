"""Input checks of the sales services: core's :mod:`crmcore.checks` under the plugin's names."""

from __future__ import annotations

from crmcore.checks import (
    bad,
    choice,
    currency,
    day,
    identifier,
    integer,
    moment,
    money,
    text,
)

__all__ = [
    "bad",
    "choice",
    "currency",
    "day",
    "identifier",
    "integer",
    "moment",
    "money",
    "text",
]
