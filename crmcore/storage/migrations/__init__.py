"""Alembic migrations: one version branch for core, one per plugin."""
