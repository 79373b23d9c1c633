"""Running alembic migrations for core and every enabled plugin's branch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(extra_locations: Sequence[str] = ()) -> Config:
    """An alembic Config over core's migrations plus the given plugin version directories."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    locations = [str(MIGRATIONS_DIR / "versions"), *(str(p) for p in extra_locations)]
    # Alembic splits version_locations on this separator.
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", __import__("os").pathsep.join(locations))
    return cfg


def upgrade(engine: Engine, metadata: MetaData, extra_locations: Sequence[str] = ()) -> None:
    """Bring the database to the head of every branch, in one transaction."""
    cfg = alembic_config(extra_locations)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        cfg.attributes["metadata"] = metadata
        command.upgrade(cfg, "heads")


def pending(engine: Engine, extra_locations: Sequence[str] = ()) -> set[str]:
    """Revisions that are heads in the scripts but not applied in the database."""
    script = ScriptDirectory.from_config(alembic_config(extra_locations))
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    applied: set[str] = set()
    for rev in current:
        applied.update(r.revision for r in script.iterate_revisions(rev, "base"))
    return set(script.get_heads()) - applied
