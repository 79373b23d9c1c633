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
