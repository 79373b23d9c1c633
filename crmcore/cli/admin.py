"""``crm init``, ``crm db upgrade|status`` and ``crm plugins list``."""

from __future__ import annotations

import click

from crmcore.cli.context import get_console, get_crm, json_option, print_json, print_table
from crmcore.cli.output import safe_text


@click.command()
def init() -> None:
    """Create the database (./crm.db by default) and bring its schema up to date."""
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
    """Apply pending migrations of core and every enabled plugin."""
    crm = get_crm()
    before = crm.pending_migrations()
    crm.upgrade()
    if before:
        get_console().print(f"Applied migrations up to: {safe_text(', '.join(sorted(before)))}")
    else:
        get_console().print("Schema already up to date.")


@db.command()
@json_option
def status(as_json: bool) -> None:
    """Show whether migrations are pending."""
    crm = get_crm()
    pending = sorted(crm.pending_migrations())
    if as_json:
        print_json({"pending": pending})
    elif pending:
        get_console().print(f"Pending: {safe_text(', '.join(pending))} (run `crm db upgrade`)")
    else:
        get_console().print("Schema up to date.")


@click.group()
def plugins() -> None:
    """Installed plugins."""


@plugins.command("list")
@json_option
def list_plugins(as_json: bool) -> None:
    """Enabled plugins with their version and the hooks they implement."""
    infos = get_crm().plugins()
    rows = [
        {
            "name": i.name,
            "version": i.version,
            "distribution": i.distribution,
            "hooks": ", ".join(h.removeprefix("crm_") for h in i.hooks),
        }
        for i in infos
    ]
    if as_json:
        print_json([{**r, "hooks": list(i.hooks)} for r, i in zip(rows, infos, strict=True)])
    else:
        print_table(rows, ["name", "version", "distribution", "hooks"], title="Plugins")
