"""`crm ... import` options for encodings, idempotency and resumable commits; purge-rejects."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner, Result

from crmcore.cli import build_cli


def crm(db_url: str, *args: str) -> Result:
    return CliRunner().invoke(build_cli(), ["--db", db_url, *args], catch_exceptions=False)


def test_import_options_end_to_end(db_url: str, tmp_path: Path) -> None:
    assert crm(db_url, "init").exit_code == 0
    customers = tmp_path / "customers.csv"
    customers.write_bytes("name,email\n张伟,zw@example.com\n李娜,not-an-email\n".encode("gb18030"))
    result = crm(db_url, "customers", "import", str(customers), "--encoding", "gb18030",
                 "--skip-invalid", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["imported"], report["rejected"]) == (1, 1)
    assert "李娜,not-an-email".encode("gb18030") in Path(report["rejects_path"]).read_bytes()

    orders = tmp_path / "orders.csv"
    orders.write_text(
        "order_no,customer_email,kind,occurred_at,amount,currency\n"
        "A-1,zw@example.com,purchase,2025-06-01T10:00:00Z,10.00,EUR\n"
        "A-2,zw@example.com,purchase,2025-06-02T10:00:00Z,12.00,EUR\n"
    )
    args = ["interactions", "import", str(orders), "--id-column", "order_no", "--source", "shop"]
    first = crm(db_url, *args, "--commit-every", "1", "--json")
    assert json.loads(first.output)["imported"] == 2, first.output
    again = crm(db_url, *args)
    assert (
        again.exit_code == 0 and "Imported 0 interactions. Skipped 2 already stored" in again.output
    )
    refused = crm(db_url, *args, "--no-dedupe")
    assert refused.exit_code == 1 and "id_column: needs dedupe" in refused.output
    plain_file = tmp_path / "plain.csv"
    plain_file.write_text(
        orders.read_text().replace("order_no,", "").replace("A-1,", "").replace("A-2,", "")
    )
    plain = ["interactions", "import", str(plain_file), "--json"]
    assert json.loads(crm(db_url, *plain).output)["imported"] == 2
    assert json.loads(crm(db_url, *plain).output)["already_stored"] == 2
    assert json.loads(crm(db_url, *plain, "--no-dedupe").output)["imported"] == 2

    wide = tmp_path / "wide.csv"
    wide.write_text("name," + ",".join(f"attributes.k{n}" for n in range(20)) + "\nAda\n")
    refused = crm(db_url, "customers", "import", str(wide), "--max-columns", "10")
    assert refused.exit_code == 1 and "at most 10 are accepted" in refused.output

    listed = crm(db_url, "customers", "purge-rejects", str(tmp_path), "--dry-run", "--json")
    assert json.loads(listed.output)["files"] == [report["rejects_path"]]
    assert Path(report["rejects_path"]).exists()
    crm(db_url, "customers", "purge-rejects", str(tmp_path))
    assert not Path(report["rejects_path"]).exists()


def test_sigterm_says_what_was_committed_and_how_to_resume(db_url: str, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    assert crm(db_url, "init").exit_code == 0
    assert crm(db_url, "customers", "add", "--name", "Buyer").exit_code == 0
    orders = tmp_path / "orders.csv"
    rows = "".join(
        f"1,purchase,2025-06-01T10:{n // 60 % 60:02d}:{n % 60:02d}Z,{n % 97}.00,EUR\n"
        for n in range(40_000)
    )
    orders.write_text("customer_id,kind,occurred_at,amount,currency\n" + rows)
    executable = str(Path(sys.executable).parent / "crm")
    command = [executable, "--db", db_url, "interactions", "import",
               str(orders), "--commit-every", "2000", "--batch-size", "500"]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Signal once the first batch has committed (the handler is installed by then), however
    # long start-up takes on a loaded machine.
    engine = sa.create_engine(db_url)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            with engine.connect() as conn:
                stored = conn.execute(sa.text("SELECT count(*) FROM crm_interactions")).scalar()
            if stored:
                break
            time.sleep(0.05)
    finally:
        engine.dispose()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    message = err.decode().strip().splitlines()[-1]
    assert message.startswith("Error: ") and "run it again to resume" in message
    assert "up to line" in message
    resumed = crm(db_url, "interactions", "import", str(orders), "--json")
    report = json.loads(resumed.output)
    assert report["already_stored"] > 0
    assert report["imported"] + report["already_stored"] == 40_000
