"""Generate the hook reference, ``docs/hooks.md``, from :mod:`crmcore.hooks.specs`.

The specs' docstrings are the reference; this module only arranges them.
Hooks are grouped by the ``# --- <group> ---`` comment markers in
``specs.py``, in source order::

    python -m crmcore.hooks.docgen           # print the reference
    python -m crmcore.hooks.docgen --write   # rewrite docs/hooks.md
    python -m crmcore.hooks.docgen --check   # exit 1 when docs/hooks.md is stale
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs

from crmcore.hooks import PROJECT_NAME, specs

#: Where the generated reference lives, relative to the repository root.
DOC_PATH = Path(__file__).parents[2] / "docs" / "hooks.md"

#: The command that regenerates the reference.
WRITE_COMMAND = "python -m crmcore.hooks.docgen --write"

_GROUP_MARKER = re.compile(r"^#\s*---\s*(?P<title>[^-].*?)\s*-*\s*$")
_DEF_LINE = re.compile(r"^def\s+(?P<name>\w+)\s*\(")
# Sphinx roles: :class:`~a.b.C`, :meth:`text <target>`, :func:`name`.
_ROLE = re.compile(r":(?P<role>[a-z]+):`(?P<body>[^`]+)`")


@attrs.frozen
class HookDoc:
    """What the reference shows about one hook."""

    name: str
    signature: str
    historic: bool
    firstresult: bool
    doc: str


@attrs.frozen
class HookGroup:
    """Hooks under one ``# --- <group> ---`` marker of ``specs.py``."""

    name: str
    description: str
    hooks: tuple[HookDoc, ...]


def spec_options(func: Callable[..., Any]) -> dict[str, Any]:
    """Return the pluggy spec options (``historic``, ``firstresult`` ...) of a hookspec."""
    opts: dict[str, Any] = getattr(func, f"{PROJECT_NAME}_spec", None) or {}
    return opts


def hook_functions(module: ModuleType = specs) -> dict[str, Callable[..., Any]]:
    """Return the hook specifications of ``module`` by name, in source order."""
    found = {
        name: func
        for name, func in vars(module).items()
        if inspect.isfunction(func) and is_hookspec(func)
    }
    return dict(sorted(found.items(), key=lambda item: item[1].__code__.co_firstlineno))


def is_hookspec(func: Callable[..., Any]) -> bool:
    """Whether ``func`` carries crmcore's hookspec marker."""
    return hasattr(func, f"{PROJECT_NAME}_spec")


def format_signature(func: Callable[..., Any]) -> str:
    """``def name(arg: Type, ...) -> Return`` with annotations exactly as written in code."""
    signature = inspect.signature(func)
    params = []
    for param in signature.parameters.values():
        text = param.name
        if param.annotation is not inspect.Parameter.empty:
            text += f": {_annotation(param.annotation)}"
        params.append(text)
    result = f"def {func.__name__}({', '.join(params)})"
    if signature.return_annotation is not inspect.Signature.empty:
        result += f" -> {_annotation(signature.return_annotation)}"
    return result


def _annotation(annotation: object) -> str:
    if isinstance(annotation, str):
        return annotation
    return inspect.formatannotation(annotation)


def rst_to_markdown(text: str) -> str:
    """Turn the reStructuredText bits of a docstring into Markdown.

    ````code```` becomes ```code```; ``:class:`~a.b.C``` becomes ```C```;
    ``:meth:`text <target>``` becomes ```text```; a role naming a hook of this
    reference becomes a link to its section.
    """
    hooks = set(hook_functions())

    def role(match: re.Match[str]) -> str:
        body = match.group("body")
        target = re.fullmatch(r"(?P<text>.+?)\s*<(?P<target>[^>]+)>", body)
        if target is not None:
            shown = target.group("text")
        elif body.startswith("~"):
            shown = body[1:].rsplit(".", 1)[-1]
        else:
            shown = body
        if shown in hooks:
            return f"[`{shown}`](#{shown})"
        return f"`{shown}`"

    return _ROLE.sub(role, text).replace("``", "`")


def hook_groups(module: ModuleType = specs) -> list[HookGroup]:
    """Group the hooks of ``module`` by the ``# --- <group> ---`` markers, in source order."""
    functions = hook_functions(module)
    groups: list[tuple[str, str, list[HookDoc]]] = []
    for line in inspect.getsource(module).splitlines():
        marker = _GROUP_MARKER.match(line)
        if marker is not None:
            name, _, description = marker.group("title").partition(":")
            groups.append((name.strip(), description.strip(), []))
            continue
        definition = _DEF_LINE.match(line)
        if definition is None or definition.group("name") not in functions:
            continue
        if not groups:
            groups.append(("hooks", "", []))
        func = functions[definition.group("name")]
        opts = spec_options(func)
        groups[-1][2].append(
            HookDoc(
                name=func.__name__,
                signature=format_signature(func),
                historic=bool(opts.get("historic")),
                firstresult=bool(opts.get("firstresult")),
                doc=inspect.cleandoc(func.__doc__ or ""),
            )
        )
    return [HookGroup(name, description, tuple(docs)) for name, description, docs in groups if docs]


def _calling_convention(hook: HookDoc) -> str:
    parts = []
    if hook.historic:
        parts.append(
            "**historic**: a plugin registered after the call still receives it "
            "(called with `call_historic`)"
        )
    if hook.firstresult:
        parts.append("**firstresult**: the first non-`None` answer wins; later plugins are skipped")
    if not parts:
        parts.append(
            "called on every plugin that implements it, the most recently registered first "
            "(`tryfirst`/`trylast` on your `hookimpl` change the order)"
        )
    return "; ".join(parts)


def render_hooks_markdown() -> str:
    """Render the Markdown text of ``docs/hooks.md``."""
    module_doc = inspect.cleandoc(specs.__doc__ or "")
    summary, _, rest = module_doc.partition("\n\n")
    groups = hook_groups()
    lines = [
        "# Hook reference",
        "",
        f"<!-- Generated from crmcore/hooks/specs.py by `{WRITE_COMMAND}`. Do not edit. -->",
        "",
        rst_to_markdown(summary.replace("This module", "`crmcore.hooks.specs`")),
        "",
        rst_to_markdown(rest).strip(),
        "",
        "Implement a hook with the `crmcore.hooks.hookimpl` marker, in a module your "
        "distribution registers under the `crmcore.plugins` entry point; see "
        "[the plugin author guide](plugins.md).",
        "",
        "## Contents",
        "",
    ]
    for group in groups:
        links = ", ".join(f"[`{h.name}`](#{h.name})" for h in group.hooks)
        lines.append(f"- **{group.name.capitalize()}**: {links}")
    for group in groups:
        lines += ["", f"## {group.name.capitalize()} hooks", ""]
        if group.description:
            lines += [f"{group.description[0].upper()}{group.description[1:]}.", ""]
        for hook in group.hooks:
            lines += [
                f"### {hook.name}",
                "",
                "```python",
                hook.signature,
                "```",
                "",
                f"Calling convention: {_calling_convention(hook)}.",
                "",
                rst_to_markdown(hook.doc),
                "",
            ]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the reference, or write (``--write``) or check (``--check``) docs/hooks.md."""
    parser = argparse.ArgumentParser(
        prog="python -m crmcore.hooks.docgen", description="Generate docs/hooks.md."
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help=f"write {DOC_PATH.name}")
    action.add_argument("--check", action="store_true", help="exit 1 when it is out of date")
    args = parser.parse_args(argv)
    text = render_hooks_markdown()
    if args.write:
        DOC_PATH.parent.mkdir(parents=True, exist_ok=True)
        DOC_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {DOC_PATH}", file=sys.stderr)
    elif args.check:
        current = DOC_PATH.read_text(encoding="utf-8") if DOC_PATH.is_file() else ""
        if current != text:
            print(f"{DOC_PATH} is out of date: run `{WRITE_COMMAND}`", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
