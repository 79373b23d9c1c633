"""The database URL crmcore uses when none is configured (no SQLAlchemy import needed)."""

#: ``./crm.db``, the embedded SQLite default.
DEFAULT_URL = "sqlite:///crm.db"

__all__ = ["DEFAULT_URL"]
