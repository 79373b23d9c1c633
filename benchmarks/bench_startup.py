"""Start-up time of the ``crm`` command, against bare Python in the same run.

Runs each command several times in a fresh process and prints the median
wall time, and how much of it is crmcore's own (minus ``python -c pass``).
``crm --version`` is answered by :mod:`crmcore.console` before anything is
imported. ``--help`` imports every installed plugin's ``plugin.py``, which
imports nothing heavy, and lists the commands registered by import path
(:mod:`crmcore.cli.lazy`) without importing them, so no SQLAlchemy. ``plugins
list`` and ``customers --help`` import what they run.

    python benchmarks/bench_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def median_seconds(command: list[str], runs: int, cwd: str) -> float:
    """Median wall time of ``command`` over ``runs`` fresh processes."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    crm = str(BIN / "crm")
    commands = {
        "python -c pass (baseline)": [sys.executable, "-c", "pass"],
        "python -c 'import click'": [sys.executable, "-c", "import click"],
        "python -c 'import sqlalchemy'": [sys.executable, "-c", "import sqlalchemy"],
        "crm --version": [crm, "--version"],
        "crm --help": [crm, "--help"],
        "crm plugins list": [crm, "plugins", "list"],
        "crm customers --help": [crm, "customers", "--help"],
    }
    with tempfile.TemporaryDirectory() as cwd:
        os.environ.pop("CRM_CONFIG", None)
        results = {name: median_seconds(cmd, args.runs, cwd) for name, cmd in commands.items()}
    base = results["python -c pass (baseline)"]
    print(f"crm start-up, median of {args.runs} runs ({os.cpu_count()} cores)")
    print(f"  {'command':32} {'seconds':>8} {'minus python':>13} {'target':>7}")
    for name, seconds in results.items():
        target = "0.30" if name in ("crm --version", "crm --help") else ""
        print(f"  {name:32} {seconds:8.3f} {seconds - base:13.3f} {target:>7}")


if __name__ == "__main__":
    main()
