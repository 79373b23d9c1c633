"""Running alembic migrations for core and every enabled plugin's branch.

Disabled plugins' version directories are still given to alembic, so that
revisions they applied earlier can be located, but their heads are not
upgraded.
"""

from __future__ import annotations

import os
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
    cfg.set_main_option("path_separator", "os")  # alembic splits version_locations on os.pathsep
    cfg.set_main_option("version_locations", os.pathsep.join(dict.fromkeys(locations)))
    return cfg


def _wanted_heads(script: ScriptDirectory, inactive: Sequence[str]) -> list[str]:
    """Head revisions, leaving out those whose script lives in an inactive location."""
    roots = [Path(p).resolve() for p in inactive]
    heads = []
    for head in sorted(script.get_heads()):
        revision = script.get_revision(head)
        path = Path(revision.path).resolve() if revision is not None else None
        if path is None or not any(root in path.parents for root in roots):
            heads.append(head)
    return heads


def upgrade(
    engine: Engine,
    metadata: MetaData,
    locations: Sequence[str] = (),
    inactive: Sequence[str] = (),
) -> None:
    """Bring core and the active branches to their heads, in one transaction.

    ``locations`` are the enabled plugins' version directories; ``inactive``
    those of installed but disabled plugins (known to alembic, not upgraded).
    """
    cfg = alembic_config([*locations, *inactive])
    script = ScriptDirectory.from_config(cfg)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        cfg.attributes["metadata"] = metadata
        for head in _wanted_heads(script, inactive):
            command.upgrade(cfg, head)


def pending(
    engine: Engine, locations: Sequence[str] = (), inactive: Sequence[str] = ()
) -> set[str]:
    """Active head revisions not yet applied in the database."""
    script = ScriptDirectory.from_config(alembic_config([*locations, *inactive]))
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    applied: set[str] = set()
    for rev in current:
        applied.update(r.revision for r in script.iterate_revisions(rev, "base"))
    return set(_wanted_heads(script, inactive)) - applied
