"""Storage: SQLAlchemy Core tables on one shared MetaData, engines and migrations.

The names below load on first use (PEP 562), so that importing a light module
of this package (:mod:`crmcore.storage.urls`) does not import SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crmcore.storage.tables import metadata
    from crmcore.storage.types import IdType, JSONDocument, Money, UTCDateTime

_WHERE = {
    "metadata": "crmcore.storage.tables",
    "IdType": "crmcore.storage.types",
    "JSONDocument": "crmcore.storage.types",
    "Money": "crmcore.storage.types",
    "UTCDateTime": "crmcore.storage.types",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'crmcore.storage' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_WHERE[name]), name)


__all__ = ["IdType", "JSONDocument", "Money", "UTCDateTime", "metadata"]
