"""How CLI commands (core's and plugins') reach the CRM and print results.

:func:`print_table`, :func:`print_record` and :func:`print_json` make every
value safe to show (see :mod:`crmcore.cli.output`); text a command builds
itself for ``get_console().print`` passes its values through
:func:`~crmcore.cli.output.safe_text`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from attrs import define, field

from crmcore.errors import StorageError

# The CRM, rich and what they import load when a command runs, not when `crm --help`
# lists the commands (benchmarks/bench_startup.py).
if TYPE_CHECKING:
    from rich.console import Console

    from crmcore.app import CRM


def _new_console() -> Console:
    from crmcore.cli.output import SafeConsole

    return SafeConsole(highlight=False, soft_wrap=True)


@define
class CLIState:
    """Options of the ``crm`` group, and the CRM opened lazily from them."""

    target: str | None = None
    actor: str | None = None
    crm: CRM | None = None
    console: Console = field(factory=_new_console)
    opener: Callable[[CLIState], CRM] | None = None
    #: Whether opening may create a SQLite file that does not exist (``crm init`` sets it).
    create: bool = False

    def open(self) -> CRM:
        """Open the CRM once (from ``--db``/``--config``/``crm.toml``) and reuse it.

        A SQLite file that does not exist is an error (``run `crm init```)
        unless :attr:`create` is set: reading never creates an empty database.
        """
        if self.crm is None:
            if not self.create:
                check_database_exists(self.target)
            if self.opener is not None:
                self.crm = self.opener(self)
            else:
                from crmcore.app import CRM

                self.crm = CRM.open(self.target)
        return self.crm


def missing_sqlite_file(url: str) -> str | None:
    """The path of the SQLite file ``url`` names when that file does not exist, else None.

    In-memory databases, SQLite URI filenames and other backends give None.
    """
    from sqlalchemy.engine import make_url

    from crmcore.storage.engine import normalise_url

    try:
        parsed = make_url(normalise_url(url))
    except Exception:  # an invalid URL is reported when the CRM opens
        return None
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:") or parsed.query.get("uri"):
        return None
    return None if Path(database).exists() else database


def check_database_exists(target: str | None = None) -> None:
    """Refuse (one line) to open a SQLite database that does not exist.

    The database is the one ``crm`` would open: ``--db`` (or
    ``CRM_DATABASE_URL``), else ``--config``/``CRM_CONFIG``/``./crm.toml``'s
    ``[database] url`` (resolved against the file), else ``./crm.db``.
    """
    from crmcore.config import default_config, load_config

    url = target
    if url is None:
        context = click.get_current_context(silent=True)
        params = context.find_root().params if context is not None else {}
        url = params.get("database")
        if not url:
            config_path = params.get("config_path")
            config = load_config(config_path) if config_path else default_config()
            url = config.database_url
    missing = missing_sqlite_file(url)
    if missing is not None:
        raise StorageError(f"no database at {missing}: run `crm init`")


def get_state() -> CLIState:
    """The state of the running ``crm`` invocation."""
    ctx = click.get_current_context()
    state = ctx.find_object(CLIState)
    if state is None:  # a plugin group invoked outside `crm`
        state = ctx.ensure_object(CLIState)
    return state


def get_crm() -> CRM:
    """The CRM for the running command: call this inside a plugin's click command."""
    return get_state().open()


def get_actor() -> str | None:
    """The ``--actor`` given to ``crm`` (who is acting, recorded with lifecycle moves)."""
    return get_state().actor


def get_console() -> Console:
    """The rich console commands print to."""
    return get_state().console


def json_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--json`` (machine-readable output) to a command."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(
        func
    )


def print_json(data: Any) -> None:
    """Print data as indented JSON on stdout (Decimal and dates as strings).

    Exact (``json.loads`` gives the data back) and terminal-safe: see
    :func:`~crmcore.cli.output.safe_json`.
    """
    from crmcore.cli.output import safe_json

    click.echo(safe_json(data))


def _shown(value: Any) -> str:
    from crmcore.cli.output import safe_json, safe_text

    if value is None:
        return ""
    if isinstance(value, dict | list):
        value = safe_json(value, indent=None) if value else ""
    return safe_text(value)


def print_table(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    title: str | None = None,
    caption: str | None = None,
) -> None:
    """Print rows as a rich table with the given columns (missing values blank).

    Cells, title and caption are shown literally (:func:`~crmcore.cli.output.safe_text`).
    """
    from rich.table import Table

    from crmcore.cli.output import safe_text

    table = Table(
        title=None if title is None else safe_text(title),
        caption=None if caption is None else safe_text(caption),
        show_lines=False,
    )
    for column in columns:
        # "fold" wraps a long value inside its cell instead of cutting it with "…".
        table.add_column(safe_text(column.replace("_", " ")), overflow="fold")
    for row in rows:
        table.add_row(*(_shown(row.get(c)) for c in columns))
    get_console().print(table)


def print_record(data: Mapping[str, Any], *, title: str | None = None) -> None:
    """Print one record as a two-column field/value table (shown literally, as print_table)."""
    from rich.table import Table

    from crmcore.cli.output import safe_text

    table = Table(title=None if title is None else safe_text(title), show_header=False)
    table.add_column("field", style="bold", overflow="fold")
    table.add_column("value", overflow="fold")
    for key, value in data.items():
        table.add_row(safe_text(key), _shown(value))
    get_console().print(table)
