"""Safe terminal output: what every ``crm`` command (core's and plugins') prints goes through here.

Stored text is hostile input: a customer called ``[/]`` would crash rich's
markup parser, ``[link=https://evil.example]Acme[/link]`` would become a
disguised hyperlink, and raw escape sequences would drive the operator's
terminal. :func:`safe_text` makes any value printable: control characters and
escape sequences are removed, bidirectional overrides are removed, and rich
markup is escaped so it shows literally. :func:`safe_json` is the counterpart
for ``--json``: JSON stays exact (parsing it gives the stored data back), with
every character a terminal could act on written as a ``\\uXXXX`` escape.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from crmcore.cli.text import safe_line, strip_control
from crmcore.model.serialization import json_text


def safe_text(value: object, *, newlines: bool = True) -> str:
    """``value`` ready to hand to rich: control characters stripped, markup escaped.

    Use it for every value that did not come from the program itself (names,
    notes, reasons, tags, anything stored) before interpolating it into a
    string that is printed with ``console.print`` or put in a rich ``Table``:
    ``console.print(f"[bold]{safe_text(customer.name)}[/bold]")``. ``None``
    gives an empty string.
    """
    if value is None:
        return ""
    return escape(strip_control(value, newlines=newlines))


def safe_json(data: Any, *, indent: int | None = 2) -> str:
    """``data`` as JSON that is exact and safe to show on a terminal.

    Non-ASCII text stays readable; C0 controls are escaped by JSON itself and
    C1 controls, DEL, bidi overrides and line/paragraph separators are written
    as ``\\uXXXX`` escapes, so ``json.loads`` gives the same data back.
    Decimals and dates become strings.
    """
    return json_text(data, indent=indent)


class SafeConsole(Console):
    """The console ``crm`` prints to: a second line of defence behind :func:`safe_text`.

    Every string it renders (``print`` arguments and table cells alike) loses
    its control characters and escape sequences before rich parses it, so a
    value a command forgot to pass through :func:`safe_text` can still not
    drive the terminal (it could still carry markup, hence :func:`safe_text`).
    Emoji codes such as ``:smile:`` are left as typed.
    """

    def __init__(self, **kwargs: Any) -> None:
        """A rich Console with emoji replacement off; ``kwargs`` as for rich's Console."""
        kwargs.setdefault("emoji", False)
        super().__init__(**kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        """Render ``text`` like rich does, after removing what a terminal would act on."""
        return super().render_str(strip_control(text), **kwargs)


__all__ = ["SafeConsole", "safe_json", "safe_line", "safe_text", "strip_control"]
