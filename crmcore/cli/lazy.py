"""Commands imported only when they run, so that ``crm --help`` starts fast.

Importing a command module pulls in SQLAlchemy and the services behind it;
listing the commands only needs their names and one line of help. A
:class:`LazyGroup` holds, for each lazy command, the ``"module:attribute"``
path of the click command and that line; ``crm --help`` prints the line,
``crm NAME ...`` imports the command. Plugins register their own groups the
same way from ``crm_register_commands``::

    @hookimpl
    def crm_register_commands(cli: click.Group) -> None:
        add_lazy_command(cli, "loyalty", "crmcore_loyalty.cli:loyalty", "Loyalty programme ...")

The line given must be the command's own short help (its docstring's first
sentence); ``tests/test_cli_startup.py`` checks that they agree.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence

import click

#: Applied to each command when it is imported (e.g. the integer bounds of every option).
Prepare = Callable[[click.Command], None]


class LazyGroup(click.Group):
    """A click group whose commands may be registered by import path, loaded on first use."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy_commands: dict[str, tuple[str, str]] = {}
        self.prepare: Prepare | None = None

    def add_lazy(self, name: str, target: str, short_help: str) -> None:
        """Register command ``name`` as ``"module:attribute"``, listed with ``short_help``."""
        module, sep, attribute = target.partition(":")
        if not sep or not module or not attribute:
            raise ValueError(f"lazy command {name!r}: target must be 'module:attribute'")
        self.lazy_commands[name] = (target, short_help)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Eager and lazy command names, sorted."""
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command ``cmd_name``, importing it the first time when it is lazy."""
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            self.add_command(self.load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def load(self, name: str) -> click.Command:
        """Import the lazy command ``name`` (and prepare it); raise if it is not a command."""
        target, _ = self.lazy_commands[name]
        module, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"lazy command {name!r}: {target} is not a click command")
        if self.prepare is not None:
            self.prepare(command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List every command with its short help, without importing the lazy ones."""
        rows: list[tuple[str, str]] = []
        limit = formatter.width - 6 - max((len(n) for n in self.list_commands(ctx)), default=0)
        for name in self.list_commands(ctx):
            if name in self.commands:
                command = self.commands[name]
                if command.hidden:
                    continue
                rows.append((name, command.get_short_help_str(limit)))
            else:
                text = self.lazy_commands[name][1]
                rows.append((name, click.Command(name, help=text).get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def add_lazy_command(group: click.Group, name: str, target: str, short_help: str) -> None:
    """Add a command to ``group`` by import path: lazily on a :class:`LazyGroup`, else now."""
    if isinstance(group, LazyGroup):
        group.add_lazy(name, target, short_help)
        return
    module, _, attribute = target.partition(":")
    group.add_command(getattr(importlib.import_module(module), attribute), name)


def lazy_targets(group: LazyGroup) -> Sequence[tuple[str, str, str]]:
    """``(name, target, short help)`` of every lazy command of ``group``."""
    return [(name, target, text) for name, (target, text) in sorted(group.lazy_commands.items())]


__all__ = ["LazyGroup", "add_lazy_command", "lazy_targets"]
