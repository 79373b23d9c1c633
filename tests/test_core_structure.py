"""Issue 19 item 8: core's shape holds (sizes, private names); the import graph is checked by
``lint-imports`` in ``make lint`` (no cycle at any depth, layers one way: pyproject.toml)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = [ROOT / "crmcore", *sorted(p for p in (ROOT / "plugins").glob("*/crmcore_*"))]
MAX_LINES = 500


def _modules() -> list[Path]:
    return [
        path
        for package in PACKAGES
        for path in sorted(package.rglob("*.py"))
        if "migrations" not in path.parts
    ]


def _private_imports(path: Path, root: Path = ROOT) -> list[str]:
    """``from other.module import _name``: a private name taken from another module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    where = path.relative_to(root)
                    found.append(f"{where}:{node.lineno} {node.module}.{alias.name}")
    return found


def test_the_walk_finds_core_and_every_plugin() -> None:
    names = {p.name for p in PACKAGES}
    assert {"crmcore", "crmcore_loyalty", "crmcore_segmentation"} <= names
    assert len(_modules()) > 100


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_past_the_size_limit(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines: split it by concern"


def test_no_private_name_is_imported_from_another_module() -> None:
    offenders = [hit for path in _modules() for hit in _private_imports(path)]
    assert offenders == []


def test_the_private_import_check_can_fail(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from crmcore.services.customers.base import _hidden\n")
    found = _private_imports(probe, tmp_path)
    assert found == ["probe.py:1 crmcore.services.customers.base._hidden"]
