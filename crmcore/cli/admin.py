"""``crm init``, ``crm db upgrade|status`` and ``crm plugins list|remove``."""

from __future__ import annotations

import attrs
import click

from crmcore.cli.context import (
    get_console,
    get_crm,
    get_state,
    json_option,
    print_json,
    print_table,
)
from crmcore.cli.output import safe_text
from crmcore.hooks.manager import plugin_infos
from crmcore.storage.migrate import CORE


@click.command()
def init() -> None:
    """Create the database (./crm.db by default) and bring its schema up to date.

    With `crm db upgrade` and `crm demo`, the only commands that create a
    SQLite file: the others say "no database at PATH" instead.
    """
    get_state().create = True
    crm = get_crm()
    crm.upgrade()
    url = crm.engine.url.render_as_string(hide_password=True)
    get_console().print(
        f"Initialised {safe_text(url)} (core and {len(crm.plugins())} plugin(s) migrated)."
    )


@click.group()
def db() -> None:
    """Database schema: migrations of core and every enabled plugin."""


@db.command()
def upgrade() -> None:
    """Apply pending migrations of core and every enabled plugin.

    Revisions of plugins that are gone stay recorded (a warning names each).
    Creates the SQLite file when there is none, as `crm init` does.
    """
    get_state().create = True
    crm = get_crm()
    before = crm.pending_migrations()
    crm.upgrade()
    if before:
        get_console().print(f"Applied migrations up to: {safe_text(', '.join(sorted(before)))}")
    else:
        get_console().print("Schema already up to date.")


@db.command()
@json_option
@click.option("--check", is_flag=True, help="Exit with code 1 when migrations are pending.")
def status(as_json: bool, check: bool) -> None:
    """Show whether migrations are pending, and plugins whose data is left behind."""
    crm = get_crm()
    state = crm.schema_state()
    pending = sorted(state.pending_heads())
    if as_json:
        print_json(
            {
                "pending": pending,
                "pending_by_owner": {o: list(r) for o, r in sorted(state.pending.items())},
                "missing_plugins": {o: list(r) for o, r in sorted(state.unknown.items())},
            }
        )
    else:
        if pending:
            owners = ", ".join(
                f"{'core' if o == CORE else o} ({', '.join(r)})"
                for o, r in sorted(state.pending.items())
            )
            get_console().print(f"Pending: {safe_text(owners)} (run `crm db upgrade`)")
        else:
            get_console().print("Schema up to date.")
    if check and pending:
        raise click.exceptions.Exit(1)


@click.group()
def plugins() -> None:
    """Installed plugins: list them, remove one's tables and migrations."""


@plugins.command("list")
@json_option
def list_plugins(as_json: bool) -> None:
    """Every installed plugin: version, status (enabled, disabled, broken ...), hooks.

    Needs no database, so it works while a plugin is broken.
    """
    from crmcore.cli.selection import SELECTION_KEY, cli_plugin_manager, config_path_from_argv

    ctx = click.get_current_context()
    config_path = ctx.find_root().params.get("config_path") or config_path_from_argv([])
    pm = cli_plugin_manager(config_path, ctx.meta.get(SELECTION_KEY))
    broken = getattr(ctx.find_root().command, "broken_plugins", {})
    infos = [
        attrs.evolve(i, status="broken", problem=broken[i.name]) if i.name in broken else i
        for i in plugin_infos(pm, everything=True)
    ]
    rows = [
        {
            "name": i.name,
            "version": i.version,
            "status": i.status,
            "distribution": i.distribution,
            "hooks": ", ".join(h.removeprefix("crm_") for h in i.hooks),
            "problem": i.problem,
        }
        for i in infos
    ]
    if as_json:
        print_json([{**r, "hooks": list(i.hooks)} for r, i in zip(rows, infos, strict=True)])
    else:
        columns = ["name", "version", "status", "distribution", "hooks"]
        if any(i.problem for i in infos):
            columns.append("problem")
        print_table(rows, columns, title="Plugins")


@plugins.command("remove")
@click.argument("name")
@click.option(
    "--drop-data/--keep-data",
    "drop_data",
    default=None,
    help="Drop the plugin's tables and rows, or keep them and only forget its migrations.",
)
@click.option("--dry-run", is_flag=True, help="Show the tables and rows concerned; change nothing.")
@json_option
def remove_plugin(name: str, drop_data: bool | None, dry_run: bool, as_json: bool) -> None:
    """Remove plugin NAME from the database: its alembic branch, and its data or not.

    Run it once the plugin is uninstalled, or with `crm --no-plugin NAME`
    while it is still installed (its own downgrade then drops its tables).
    """
    if drop_data is None and not dry_run:
        raise click.UsageError("choose --drop-data (its tables go) or --keep-data (they stay)")
    crm = get_crm()
    removal = crm.remove_plugin(name, drop_data=bool(drop_data), dry_run=dry_run)
    if as_json:
        print_json(
            {
                "plugin": removal.name,
                "tables": dict(removal.tables),
                "revisions": list(removal.revisions),
                "drop_data": removal.drop_data,
                "dry_run": removal.dry_run,
            }
        )
        return
    title = f"Tables of plugin {name}"
    if drop_data is not None:
        title += f" ({'would be ' if dry_run else ''}{'dropped' if drop_data else 'kept'})"
    rows = [{"table": t, "rows": n} for t, n in removal.tables.items()]
    print_table(rows, ["table", "rows"], title=title)
    revisions = ", ".join(removal.revisions) or "none"
    forgotten = "would be forgotten" if dry_run else "forgotten"
    get_console().print(f"Migrations ({safe_text(revisions)}): {forgotten}.")
