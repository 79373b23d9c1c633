"""`crm --version` loads nothing heavy; a closed pipe ends a command quietly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CRM = str(Path(sys.executable).parent / "crm")


def test_version_is_answered_without_loading_the_cli_or_sqlalchemy() -> None:
    code = (
        "import sys; from crmcore.console import main; main(['--version']); "
        "assert 'sqlalchemy' not in sys.modules and 'crmcore.cli' not in sys.modules, "
        "sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'crmcore')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "crm, version 0.1.0"
    script = subprocess.run([CRM, "--version"], capture_output=True, text=True)
    assert script.stdout.strip() == "crm, version 0.1.0"


def test_a_closed_pipe_is_quiet(db_url: str, tmp_path: Path) -> None:
    rows = "".join(f"P{n},p{n}@example.com\n" for n in range(3000))
    source = tmp_path / "many.csv"
    source.write_text("name,email\n" + rows)
    base = [CRM, "--db", db_url]
    subprocess.run([*base, "init"], check=True, capture_output=True)
    subprocess.run([*base, "customers", "import", str(source)], check=True, capture_output=True)
    for command in (["customers", "export"], ["customers", "list", "--json", "--limit", "3000"]):
        shell = subprocess.run(
            f"{' '.join(base + command)} | head -1", shell=True, capture_output=True, text=True
        )
        producer = subprocess.Popen([*base, *command], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)  # fmt: skip
        assert producer.stdout is not None
        producer.stdout.readline()
        producer.stdout.close()  # the reader goes away, as `head` does
        _, err = producer.communicate(timeout=60)
        assert producer.returncode == 0, err
        assert b"Broken pipe" not in err and b"Error" not in err
        assert "Error" not in shell.stderr


def test_lazy_commands_list_their_own_short_help() -> None:
    """The help line registered for each lazy command is the command's own (no drift)."""
    import importlib

    from crmcore.cli import BUILTIN_COMMANDS, build_cli
    from crmcore.cli.lazy import LazyGroup, lazy_targets

    group = build_cli([])
    assert isinstance(group, LazyGroup)
    listed = lazy_targets(group)
    assert {name for name, _, _ in BUILTIN_COMMANDS} <= {name for name, _, _ in listed}
    for name, target, short_help in listed:
        module, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert command.get_short_help_str(1000) == short_help, name


def test_help_imports_no_sqlalchemy_and_no_command_module() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from crmcore.console import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('sqlalchemy', 'crmcore.app', 'crmcore.cli.customers', 'rich')"
        " if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "HEAVY []", out
