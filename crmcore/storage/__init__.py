"""Storage: SQLAlchemy Core tables on one shared MetaData, engines and migrations."""

from crmcore.storage.tables import metadata
from crmcore.storage.types import JSONDocument, Money, UTCDateTime

__all__ = ["JSONDocument", "Money", "UTCDateTime", "metadata"]
