"""The ``crm`` command line: a thin layer over the services.

Each command parses its options, calls a service function and prints the
result as a table (or JSON with ``--json``). Errors print as one line on
stderr with exit code 1, never a traceback: CRM errors as their message, any
other exception as ``Error: internal error (<type>: <message>) ...``; ``--debug``
(or ``CRM_DEBUG=1``) prints the traceback of the latter as well. Usage errors
(an unknown option, a value that is not a number) are click's, with exit
code 2. Integer options and arguments declared ``type=int`` (core's and every
plugin's) accept signed 64-bit values only: see :data:`crmcore.cli.params.INT64`.
Plugins add their own command groups through the ``crm_register_commands`` hook.
"""

from __future__ import annotations

import os
import sys
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from crmcore.cli.context import CLIState
from crmcore.cli.lazy import LazyGroup
from crmcore.cli.params import bound_integers
from crmcore.cli.selection import (
    CONFIG_ENV,
    SELECTION_KEY,
    cli_plugin_manager,
    config_path_from_argv,
    plugin_selection,
    selection_from_argv,
)
from crmcore.cli.text import safe_line
from crmcore.config import default_config, load_config
from crmcore.errors import ConfigError, CRMError, PluginWarning
from crmcore.hooks.manager import (
    DISABLE_ENV,
    LOAD_ENV,
    CRMPluginManager,
)

#: Environment variable that turns ``--debug`` on.
DEBUG_ENV = "CRM_DEBUG"

_CLICK_FLOW = (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort)


def error_line(exc: BaseException) -> str:
    """The one line ``crm`` prints on stderr for ``exc`` (starting ``Error: ``)."""
    if isinstance(exc, CRMError):
        return safe_line(f"Error: {exc}")
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return safe_line(f"Error: {exc.strerror}{where}")
    detail = str(exc)
    if len(detail) > 300:
        detail = detail[:299] + "…"
    return safe_line(
        f"Error: internal error ({type(exc).__name__}{': ' + detail if detail else ''}); "
        "run with --debug for the traceback"
    )


class CRMGroup(LazyGroup):
    """A click group that turns every error into one line on stderr and exit code 1.

    ``plugin_problems`` (one line per plugin that could not load) are printed
    as warnings before anything else, ``--help`` and ``--version`` included.
    """

    plugin_problems: tuple[str, ...] = ()
    #: Plugins that could not load or add their commands, with the reason.
    broken_plugins: Mapping[str, str] = {}

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        """Print the plugin problems, then parse as click does."""
        if parent is None:
            for problem in self.plugin_problems:
                click.echo(safe_line(f"Warning: {problem}"), err=True)
        return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; report any exception as one line, without a traceback.

        Click's own flow (usage errors, ``--help``, aborts) passes through.
        """
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _one_line_warning(warnings.showwarning)
                return super().invoke(ctx)
        except _CLICK_FLOW:
            raise
        except BrokenPipeError:
            # The reader went away (`crm customers export | head`): stop quietly.
            _silence_stdout()
            ctx.exit(0)
        except Exception as exc:
            debug = bool(ctx.params.get("debug")) or os.environ.get(DEBUG_ENV, "") not in {"", "0"}
            if debug and not isinstance(exc, CRMError):
                traceback.print_exc(file=sys.stderr)
            click.echo(error_line(exc), err=True)
            ctx.exit(1)
        finally:
            state = ctx.find_object(CLIState)
            if state is not None and state.crm is not None:
                skipped = state.crm.customers.unreadable.summary()
                if skipped:  # rows with sealed fields no configured key opens
                    click.echo(f"Warning: {skipped}", err=True)
                state.crm.close()
                state.crm = None


@click.group(cls=CRMGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "database",
    metavar="URL",
    envvar="CRM_DATABASE_URL",
    help="Database URL or SQLite file path (overrides crm.toml; env CRM_DATABASE_URL).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=CONFIG_ENV,
    help="Configuration file (default ./crm.toml when present; env CRM_CONFIG).",
)
@click.option(
    "--actor",
    help="On whose behalf you act, for the audit log: recorded as on_behalf_of, "
    "never instead of --user.",
)
@click.option(
    "--user",
    help="Act as this user: every command is checked against their role "
    "(an operator tool; [access] allow_role_switch = false turns it off).",
)
@click.option(
    "--role",
    type=click.Choice(["admin", "manager", "agent"]),
    default="agent",
    show_default=True,
    help="The role of --user.",
)
@click.option(
    "--plugins",
    "load_plugins",
    metavar="NAMES",
    help=f"Load only these installed plugins, comma-separated ('' for none; env {LOAD_ENV}).",
)
@click.option(
    "--no-plugin",
    "no_plugins",
    metavar="NAME",
    multiple=True,
    help=f"Do not load this plugin; repeatable (env {DISABLE_ENV}, comma-separated).",
)
@click.option(
    "--debug",
    is_flag=True,
    help="On an internal error, print its traceback too (env CRM_DEBUG=1).",
)
@click.version_option(package_name="crmcore", prog_name="crm")
@click.pass_context
def _root(
    ctx: click.Context,
    database: str | None,
    config_path: Path | None,
    actor: str | None,
    user: str | None,
    role: str,
    load_plugins: str | None,
    no_plugins: tuple[str, ...],
    debug: bool,
) -> None:
    """crmcore: customers, interactions and lifecycle, with every CRM strategy a plugin.

    Start with `crm init` (creates ./crm.db) or `crm demo` (loads a demo data
    set), then `crm customers list`. Every listing takes --json.
    """
    from attrs import evolve

    from crmcore.access import Principal, Role
    from crmcore.app import CRM

    def opener(state: CLIState) -> CRM:
        config = load_config(config_path) if config_path else default_config()
        if database:
            config = evolve(config, database_url=database)
        switching = user is not None or role_given
        if switching and not config.allow_role_switch:
            raise ConfigError(
                "--user/--role: role switching is turned off in crm.toml "
                "([access] allow_role_switch = false)"
            )
        crm = CRM.open(config, load_plugins=selection.load, disable_plugins=selection.disabled)
        return crm.as_user(Principal(user, Role(role))) if user else crm

    # --role without --user still counts as asking to switch (refused when switching is off).
    role_given = ctx.get_parameter_source("role") is not click.core.ParameterSource.DEFAULT
    selection = plugin_selection(load_plugins, no_plugins)
    ctx.meta[SELECTION_KEY] = selection
    state = ctx.ensure_object(CLIState)
    state.actor = actor or user
    state.opener = opener


#: Core's commands: name, where the click command is, its short help (listed without importing).
BUILTIN_COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("init", "crmcore.cli.admin:init",
     "Create the database (./crm.db by default) and bring its schema up to date."),
    ("db", "crmcore.cli.admin:db", "Database schema: migrations of core and every enabled plugin."),
    ("plugins", "crmcore.cli.admin:plugins",
     "Installed plugins: list them, remove one's tables and migrations."),
    ("customers", "crmcore.cli.customers:customers", "Customers: people and organisations."),
    ("accounts", "crmcore.cli.accounts:accounts",
     "Accounts: contacts of organisations, hierarchy, links, account team, scores."),
    ("interactions", "crmcore.cli.interactions:interactions",
     "Interactions: purchases, calls, emails, visits, complaints ..."),
    ("lifecycle", "crmcore.cli.lifecycle:lifecycle",
     "Customer lifecycle stages: prospect, new, active, loyal, at_risk, churned."),
    ("pool", "crmcore.cli.pool:pool",
     "Customers without an owner: list them, claim one, give one back, recycle."),
    ("report", "crmcore.cli.report:report",
     "CRM performance: core figures and every plugin's KPIs, against the previous period."),
    ("audit", "crmcore.cli.audit:audit",
     "The audit log, newest first (any --limit: fetched and printed a page at a time)."),
    ("access", "crmcore.cli.access:access",
     "Access grants (roles: admin, manager, agent; see `crm --help` for --user/--role)."),
    ("security", "crmcore.cli.security:security",
     "Field encryption at rest (see docs/security.md)."),
    ("events", "crmcore.cli.events:events",
     "Committed domain events (the outbox) and their relay to a message broker."),
    ("demo", "crmcore.cli.demo:demo",
     "Create a fresh SQLite demo database, load a realistic data set and summarise it."),
)  # fmt: skip


def _register_builtin_commands(group: LazyGroup) -> None:
    for name, target, short_help in BUILTIN_COMMANDS:
        group.add_lazy(name, target, short_help)


def _register_plugin_commands(pm: CRMPluginManager, group: click.Group) -> None:
    """Each plugin adds its commands on its own: one that fails is recorded as broken."""
    caller = pm.hook.crm_register_commands
    plugins = {impl.plugin_name: impl.plugin for impl in caller.get_hookimpls()}
    for name in reversed(list(plugins)):  # pluggy's order: the most recent first
        others = [p for n, p in plugins.items() if n != name]
        try:
            pm.subset_hook_caller("crm_register_commands", remove_plugins=others)(cli=group)
        except Exception as exc:
            pm.broken[name] = f"failed in crm_register_commands: {type(exc).__name__}: {exc}"


def build_cli(argv: Sequence[str] = ()) -> click.Group:
    """A new ``crm`` group with core's commands and those of every enabled plugin.

    ``argv`` is searched for ``--config`` so that disabled plugins add no
    commands. Each call builds a fresh group, so a long-lived process that
    calls it again sees plugins enabled or disabled since.
    """
    group = CRMGroup(
        name="crm",
        callback=_root.callback,
        params=list(_root.params),
        help=_root.help,
        context_settings=_root.context_settings,
    )
    group.prepare = bound_integers  # each lazy command, as it is imported
    _register_builtin_commands(group)
    pm = cli_plugin_manager(config_path_from_argv(argv), selection_from_argv(argv))
    _register_plugin_commands(pm, group)
    group.broken_plugins = dict(pm.broken)
    group.plugin_problems = tuple(
        f"plugin {name!r} is broken ({problem}); leave it out with --no-plugin {name}"
        for name, problem in sorted(pm.broken.items())
    )
    bound_integers(group)
    return group


def _one_line_warning(show: Callable[..., None]) -> Callable[..., None]:
    """A ``warnings.showwarning`` printing crmcore's warnings as one ``Warning:`` line."""

    def showwarning(message: Warning | str, category: type[Warning], *args: Any, **kw: Any) -> None:
        if issubclass(category, PluginWarning):
            click.echo(safe_line(f"Warning: {message}"), err=True)
        else:
            show(message, category, *args, **kw)

    return showwarning


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit raises no second BrokenPipeError."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (a test runner's buffer)
        pass
    finally:
        os.close(devnull)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``crm`` script."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        group = build_cli(args)
    except Exception as exc:
        if "--debug" in args and not isinstance(exc, CRMError):
            traceback.print_exc(file=sys.stderr)
        click.echo(error_line(exc), err=True)
        sys.exit(1)
    group.main(args=args, prog_name="crm")


__all__ = ["CRMGroup", "build_cli", "error_line", "main"]
