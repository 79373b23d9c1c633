"""Imports in the encodings Chinese spreadsheets write; rejects files keep the original bytes."""

from __future__ import annotations

import codecs
import csv
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from crmcore import CRM, ValidationError
from crmcore.io.imports import find_rejects, import_customers, purge_rejects

ROWS = [("张伟", "zw@example.com"), ("李娜", "ln@example.com"), ("陳大文", "cdw@example.com")]


def names(crm: CRM) -> list[str]:
    return sorted(c.name for c in crm.customers.iter_all())


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "big5"])
def test_chinese_encodings_by_name(crm: CRM, tmp_path: Path, encoding: str) -> None:
    rows = (
        ROWS if encoding != "big5" else [("陳大文", "cdw@example.com"), ("張偉", "zw@example.com")]
    )
    path = tmp_path / "customers.csv"
    text = "name,email\n" + "".join(f"{n},{e}\n" for n, e in rows)
    path.write_bytes(text.encode(encoding))
    with pytest.raises(ValidationError, match="not valid UTF-8"):
        import_customers(crm, path)
    assert import_customers(crm, path, encoding=encoding).imported == len(rows)
    assert names(crm) == sorted(n for n, _ in rows)


@pytest.mark.parametrize(
    ("bom", "codec"),
    [
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
        (codecs.BOM_UTF8, "utf-8"),
    ],
)
def test_byte_order_mark_picks_the_encoding(
    crm: CRM, tmp_path: Path, bom: bytes, codec: str
) -> None:
    path = tmp_path / "customers.csv"
    text = "name,email\r\n" + "".join(f"{n},{e}\r\n" for n, e in ROWS)
    path.write_bytes(bom + text.encode(codec))
    assert import_customers(crm, path).imported == 3
    assert names(crm) == sorted(n for n, _ in ROWS)


def test_utf16_without_bom_by_name_and_conflicting_bom(crm: CRM, tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes(("name\n" + "张伟\n").encode("utf-16-le"))
    assert import_customers(crm, path, encoding="utf-16-le").imported == 1
    marked = tmp_path / "marked.csv"
    marked.write_bytes(codecs.BOM_UTF8 + "name\n李娜\n".encode())
    with pytest.raises(ValidationError, match="UTF-8 byte-order mark but 'gbk' was given"):
        import_customers(crm, marked, encoding="gbk")
    with pytest.raises(ValidationError, match="encoding: unknown encoding 'klingon'"):
        import_customers(crm, marked, encoding="klingon")
    assert names(crm) == ["张伟"]


def test_rejects_file_keeps_the_original_bytes(crm: CRM, tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    bad_row = "王芳,not-an-email\n".encode("gbk")
    undecodable = b"\x81\x20broken,b@example.com\n"  # 0x81 0x20 is not a GBK character
    path.write_bytes(
        b"name,email\n" + "张伟,zw@example.com\n".encode("gbk") + bad_row + undecodable
    )
    result = import_customers(crm, path, encoding="gbk", skip_invalid=True)
    assert (result.imported, result.rejected) == (1, 2)
    assert result.rejects_path is not None
    raw = result.rejects_path.read_bytes()
    assert "王芳,not-an-email".encode("gbk") in raw
    assert b"\x81\x20broken,b@example.com" in raw
    with result.rejects_path.open(encoding="gbk", errors="surrogateescape", newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_line = {r["_line"]: r["_error"] for r in rows}  # undecodable rows come first
    assert set(by_line) == {"3", "4"}
    assert "not valid GBK: byte 0x81 at line 4" in by_line["4"]


def test_header_with_too_many_columns_is_refused(crm: CRM, tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text("name," + ",".join(f"attributes.a{n}" for n in range(5000)) + "\nAda\n")
    with pytest.raises(ValidationError, match="the header has 5001 columns; at most 1000"):
        import_customers(crm, path)
    assert import_customers(crm, path, max_columns=6000).imported == 1


def test_deeply_nested_json_line_is_a_row_error(crm: CRM, tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_text('{"name": "Ada", "attributes": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    result = import_customers(crm, path, skip_invalid=True)
    assert (result.imported, result.rejected) == (0, 1)


def test_killed_import_leaves_no_rejects_file(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    rows = "".join(f"P{n},{'bad' if n % 2 else f'p{n}@example.com'}\n" for n in range(2000))
    path.write_text("name,email\n" + rows)
    script = textwrap.dedent(
        f"""
        import os, signal
        from crmcore import CRM
        from crmcore.io.imports import import_customers
        crm = CRM.open({db_url!r}, discover=False, upgrade=True)
        def progress(rows, _bytes):
            if rows >= 1000:
                os.kill(os.getpid(), signal.SIGKILL)
        import_customers(crm, {str(path)!r}, skip_invalid=True, batch_size=100, progress=progress)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()
    assert not (tmp_path / "customers.rejects.csv").exists()
    left = list(find_rejects(tmp_path))
    assert [p.name for p in left] == [".customers.rejects.csv.partial"]
    assert purge_rejects(tmp_path, dry_run=True) == left and left[0].exists()
    assert purge_rejects(tmp_path) == left and not left[0].exists()
