"""Every `crm` command (core's and the installed plugins') on hostile argument values: no traceback.

A fixed corpus rather than random search, so a run is fast and repeatable: for
each leaf command of the group that ``build_cli()`` builds, a few invocations
fill every argument and option with one hostile value of the corpus for its
type (huge, negative and zero integers, the ends of the date range, rich
markup, terminal escapes and NUL, very long and deeply nested text, ids that do
not exist). Each invocation must end with exit code 0, 1 (one ``Error:``
line) or 2 (click's usage error), print no traceback and raise nothing but
SystemExit, on a database already holding hostile stored text.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from crmcore import CRM
from crmcore.cli import build_cli

#: Commands left out, and why: `demo` builds a 400-customer database per run (seconds each).
SKIPPED = {("demo",)}
#: Flags always given: past confirmations, JSON output, and `--once` so that a
#: long-running command (`crm events relay`) returns.
ALWAYS_SET = {"yes", "as_json", "once"}

DEEP_JSON = '{"a": ' * 3000 + "1" + "}" * 3000
STRINGS = [
    "[/]",
    "\x1b]8;;https://evil.example\x07x\x1b]8;;\x07\x00\x9b2J\u202e",
    "[link=https://evil.example]Acme[/link]" + "A" * 20_000,
    DEEP_JSON,
]
INTEGERS = ["9223372036854775808", "-1", "0", "424242"]
FLOATS = ["nan", "-1e308", "inf", "1e309"]
MOMENTS = ["0001-01-01", "9999-12-31", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"]
PAIRS = ["k=[/]", "k=\x1b[2J\x00", "=", "k=" + "[" * 5000]
TIME_OPTIONS = {"at", "since", "until", "start", "end", "as_of", "occurred_at", "opened_at", "day"}
HOSTILE_ROWS = (
    "name,email,phone,attributes,size\n"
    '[/],a@x.org,+1 555 0100,"{""a"": 1}",3000000000\n'
    "=cmd|' /C calc'!A0,b@x.org,\uff11\uff12\uff13\uff14\uff15\uff16\uff17,,\n"
)


def leaf_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[Any]:
    """(path, command) for every command below ``group`` that is not itself a group.

    Lazy commands (``crmcore.cli.lazy``) are imported as ``crm`` would import them.
    """
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        path = (*prefix, name)
        if isinstance(command, click.Group):
            yield from leaf_commands(command, path)
        elif path not in SKIPPED:
            yield path, command


def value_for(param: click.Parameter, variant: int, tmp: Path) -> str | None:
    """The hostile value of ``variant`` for ``param`` (None: leave the parameter out)."""
    kind = param.type
    if isinstance(kind, click.Choice):
        return str(kind.choices[variant % len(kind.choices)])
    if isinstance(kind, click.Path):
        if getattr(kind, "exists", False):
            source = tmp / f"input-{variant}.csv"
            source.write_text(HOSTILE_ROWS, encoding="utf-8")
            return str(source)
        return str(tmp / f"output-{variant}.out")
    if isinstance(kind, click.types.FloatParamType):
        return FLOATS[variant]
    if isinstance(kind, click.types.IntParamType) or kind.name == "integer":
        return INTEGERS[variant]
    name = param.name or ""
    if name in TIME_OPTIONS or "date" in name or name.endswith("_at"):
        return MOMENTS[variant]
    if isinstance(param, click.Option) and "KEY=VALUE" in (param.metavar or ""):
        return PAIRS[variant]
    return STRINGS[variant]


def benign_for(param: click.Parameter, tmp: Path) -> str | None:
    """A valid value for ``param`` (so that another parameter's hostile value is reached)."""
    kind = param.type
    if isinstance(kind, click.Choice | click.Path):
        return value_for(param, 0, tmp)
    if isinstance(kind, click.types.FloatParamType | click.types.IntParamType):
        return "1"
    if kind.name == "integer":
        return "1"
    name = param.name or ""
    if name in TIME_OPTIONS or "date" in name or name.endswith("_at"):
        return "2025-06-01"
    if isinstance(param, click.Option) and "KEY=VALUE" in (param.metavar or ""):
        return "k=v"
    if isinstance(param, click.Option) and not param.required:
        return None
    return "x"


def argv_for(
    command: click.Command, variant: int, tmp: Path, only: click.Parameter | None = None
) -> list[str]:
    """Arguments for one invocation: every parameter (or ``only``) given a hostile value.

    With ``only``, the other parameters get benign values (optional ones are
    left out). Flags are set on even variants; those of ALWAYS_SET always.
    """
    argv: list[str] = []
    positional: list[str] = []
    for param in command.params:
        hostile = only is None or param is only
        if isinstance(param, click.Argument):
            value = value_for(param, variant, tmp) if hostile else benign_for(param, tmp)
            positional.extend([value] * (param.nargs if param.nargs > 0 else 1) if value else [])
        elif isinstance(param, click.Option) and param.name not in {"help"}:
            opt = max(param.opts, key=len)
            if param.is_flag:
                if (hostile and variant % 2 == 0) or param.name in ALWAYS_SET:
                    argv.append(opt)
                continue
            value = value_for(param, variant, tmp) if hostile else benign_for(param, tmp)
            if value is not None:
                argv.extend([opt, value])
    return [*argv, "--", *positional] if positional else argv


def invocations(command: click.Command, tmp: Path) -> Iterator[list[str]]:
    """Every hostile variant with all parameters at once, then each parameter on its own."""
    for variant in range(len(STRINGS)):
        yield argv_for(command, variant, tmp)
    for index, param in enumerate(command.params):
        if isinstance(param, click.Option) and (param.is_flag or param.name == "help"):
            continue
        # A choice or a path has nothing hostile to vary: one invocation each. Text
        # parameters alternate between two pairs of the corpus (runtime), numbers
        # and dates get every value.
        if isinstance(param.type, click.Choice | click.Path):
            variants: tuple[int, ...] = (0,)
        elif isinstance(param.type, click.types.StringParamType):
            variants = (index % 4, (index + 2) % 4)
        else:
            variants = tuple(range(len(STRINGS)))
        for variant in variants:
            yield argv_for(command, variant, tmp, only=param)


@pytest.fixture
def hostile_db(db_url: str) -> str:
    with CRM.open(db_url, upgrade=True) as crm:
        crm.customers.create_many(
            [
                {"name": "[/]", "email": "a@x.org", "tags": ["[bold]"], "attributes": {"k": "[/]"}},
                {"name": "\x1b[2J\x1b]8;;https://evil.example\x07Eve\x1b]8;;\x07", "owner": "[/]"},
                {"name": '=HYPERLINK("https://evil.example")', "kind": "organization"},
            ]
        )
        crm.interactions.record(
            {"customer_id": 1, "kind": "purchase", "amount": "5", "currency": "EUR",
             "occurred_at": "2025-06-01T10:00:00+00:00", "text": "[/] \x1b[31m"}
        )  # fmt: skip
    return db_url


def test_no_command_prints_a_traceback(hostile_db: str, tmp_path: Path) -> None:
    group = build_cli()
    commands = list(leaf_commands(group))
    assert len(commands) > 40, "the crm group and the installed plugins' commands"
    assert {("customers", "list"), ("report",), ("interactions", "export")} <= {
        path for path, _ in commands
    }
    runner = CliRunner()
    failures: list[str] = []
    count = 0
    for path, command in commands:
        for argv in invocations(command, tmp_path):
            count += 1
            args = ["--db", hostile_db, *path, *argv]
            result = runner.invoke(group, args, input="n\n")
            output = result.output
            unexpected = result.exception is not None and not isinstance(
                result.exception, SystemExit
            )
            if result.exit_code not in (0, 1, 2) or "Traceback" in output or unexpected:
                failures.append(
                    f"crm {' '.join(path)} {str(argv)[:200]}: exit {result.exit_code}, "
                    f"{type(result.exception).__name__}: {str(result.exception)[:200]}"
                )
            elif result.exit_code == 1:
                errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
                if len(errors) != 1 or "\x1b" in result.stderr:
                    failures.append(f"crm {' '.join(path)} {str(argv)[:200]}: {result.stderr!r}")
    assert not failures, "\n".join(failures)
    assert count > 800  # how long it takes is no assertion: timing belongs in benchmarks
