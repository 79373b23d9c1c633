"""docs/hooks.md is generated from crmcore/hooks/specs.py and must stay in step with it."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from crmcore.hooks import docgen, specs


def test_docs_hooks_md_is_up_to_date() -> None:
    current = docgen.DOC_PATH.read_text(encoding="utf-8") if docgen.DOC_PATH.is_file() else ""
    assert current == docgen.render_hooks_markdown(), (
        f"{docgen.DOC_PATH} is out of date with crmcore/hooks/specs.py: "
        f"run `{docgen.WRITE_COMMAND}`"
    )


def spec_names() -> list[str]:
    return [
        name
        for name, value in vars(specs).items()
        if inspect.isfunction(value) and hasattr(value, "crmcore_spec")
    ]


@pytest.mark.parametrize("name", spec_names())
def test_every_hook_has_a_real_docstring_and_a_section(name: str) -> None:
    func = getattr(specs, name)
    doc = inspect.cleandoc(func.__doc__ or "")
    assert len(doc) >= 80, f"{name}: the docstring is its reference; say when, returns, raises"
    assert doc.splitlines()[0].endswith("."), f"{name}: the first line is a sentence"
    text = docgen.render_hooks_markdown()
    assert f"\n### {name}\n" in text
    assert f"def {name}(" in text
    assert inspect.cleandoc(func.__doc__).splitlines()[0].replace("``", "`") in text


def test_every_hook_is_grouped_once_in_source_order() -> None:
    grouped = [hook.name for group in docgen.hook_groups() for hook in group.hooks]
    assert grouped == spec_names()
    names = [group.name for group in docgen.hook_groups()]
    assert names == [
        "setup",
        "events",
        "validation",
        "views",
        "access control",
        "privacy",
        "after commit",
        "demo",
    ]


def test_signature_keeps_annotations_as_written() -> None:
    assert docgen.format_signature(specs.crm_metrics) == (
        "def crm_metrics(crm: CRM, period: Period) -> Mapping[str, Any] | None"
    )


def test_spec_options_are_shown() -> None:
    hooks = {hook.name: hook for group in docgen.hook_groups() for hook in group.hooks}
    assert hooks["crm_add_hookspecs"].historic
    assert not hooks["crm_metrics"].historic
    text = docgen.render_hooks_markdown()
    section = text.split("### crm_add_hookspecs", 1)[1].split("###", 1)[0]
    assert "**historic**" in section


def test_sphinx_roles_become_markdown() -> None:
    converted = docgen.rst_to_markdown(
        "See :class:`~crmcore.errors.PluginError`, :meth:`CRM.open <crmcore.app.CRM.open>`, "
        ":func:`crm_startup` and ``ctx``."
    )
    assert converted == "See `PluginError`, `CRM.open`, [`crm_startup`](#crm_startup) and `ctx`."


def test_module_prints_the_reference() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "crmcore.hooks.docgen"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == docgen.render_hooks_markdown()
