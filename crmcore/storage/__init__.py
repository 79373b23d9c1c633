"""Storage: SQLAlchemy Core tables on one shared MetaData, engines and migrations."""

from crmcore.storage.tables import metadata
from crmcore.storage.types import IdType, JSONDocument, Money, UTCDateTime

__all__ = ["IdType", "JSONDocument", "Money", "UTCDateTime", "metadata"]
