"""Customer import with ``--update-existing``: a re-import of the same file, and of a corrected one.

    .venv/bin/python benchmarks/bench_upsert.py [--customers 20000] [--changed 0.1]
        [--backends sqlite,postgresql] [--postgres URL] [--match email] [--core-only]

On a fresh database (every installed plugin, as ``bench_ingest.py``) of each
backend: the plain CSV import of the customers file ``bench_ingest.py``
writes (``create``), the same file again with ``update_existing`` (every
row matched and unchanged: ``same``), then a copy with a share of the rows
corrected (``--changed``: those rows updated, the rest unchanged:
``corrected``). Rows/s of each, and what the import counted.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))
from bench_ingest import DEFAULT_PG, customer_rows, open_crm, write_csv


def corrected_copy(source: Path, target: Path, share: float) -> int:
    """Write ``source`` with the industry of every 1/share-th row set; return rows changed."""
    step = max(1, round(1 / share)) if share > 0 else 0
    changed = 0
    with source.open(newline="", encoding="utf-8") as inp, target.open("w", newline="") as out:
        reader = csv.DictReader(inp)
        fields = [*(reader.fieldnames or []), "industry"]
        writer = csv.DictWriter(out, fields)
        writer.writeheader()
        for i, row in enumerate(reader):
            if step and i % step == 0:
                row["industry"] = "corrected"
                changed += 1
            writer.writerow(row)
    return changed


def run(
    url: str, folder: Path, n: int, match: str, core_only: bool
) -> list[tuple[str, float, Any]]:
    from crmcore.io.imports import import_customers

    crm = open_crm(url, core_only)
    results = []
    for label, name, upsert in (
        ("create", "customers.csv", False),
        ("same", "customers.csv", True),
        ("corrected", "corrected.csv", True),
    ):
        options: dict[str, Any] = {"update_existing": True, "match": match} if upsert else {}
        start = time.perf_counter()
        result = import_customers(crm, folder / name, batch_size=1000, **options)
        results.append((label, time.perf_counter() - start, result))
    crm.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--changed", type=float, default=0.1, help="share of corrected rows")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres", default=DEFAULT_PG)
    parser.add_argument("--match", default="email", choices=["email", "phone"])
    parser.add_argument("--core-only", action="store_true", help="no plugins")
    args = parser.parse_args()
    n = args.customers
    share = f"{args.changed:.0%}"
    print(f"crmcore import upsert: {n:,} customers, {share} corrected, --match {args.match}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_csv(folder / "customers.csv", customer_rows(n))
        changed = corrected_copy(folder / "customers.csv", folder / "corrected.csv", args.changed)
        for backend in args.backends.split(","):
            if backend == "sqlite":
                url = f"sqlite:///{folder}/upsert.db"
            else:
                engine = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
                with engine.connect() as conn:
                    conn.execute(sa.text("DROP SCHEMA IF EXISTS bench_upsert CASCADE"))
                    conn.execute(sa.text("CREATE SCHEMA bench_upsert"))
                engine.dispose()
                sep = "&" if "?" in args.postgres else "?"
                url = f"{args.postgres}{sep}options=-csearch_path%3Dbench_upsert"
            print(f"\n{backend}")
            print(f"  {'import':12}{'rows/s':>10}{'created':>9}{'updated':>9}{'unchanged':>11}")
            for label, seconds, result in run(url, folder, n, args.match, args.core_only):
                print(
                    f"  {label:12}{n / seconds:10,.0f}{result.imported:9,}"
                    f"{result.updated:9,}{result.unchanged:11,}"
                )
            assert changed >= 0
            if backend != "sqlite":
                engine = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
                with engine.connect() as conn:
                    conn.execute(sa.text("DROP SCHEMA IF EXISTS bench_upsert CASCADE"))
                engine.dispose()


if __name__ == "__main__":
    main()
