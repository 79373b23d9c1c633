"""Click parameter types that refuse values the database cannot hold, before it sees them."""

from __future__ import annotations

from typing import Any

import click

from crmcore.errors import ValidationError
from crmcore.model.limits import INT64_MAX, INT64_MIN


class BoundedInt(click.ParamType[int]):
    """An integer written in ASCII digits within ``[low, high]``.

    Out-of-range values raise :class:`~crmcore.errors.ValidationError` naming the
    option (one line, exit code 1, as every other bad value); text that is not
    an integer at all is a usage error, as click's ``INT``.
    """

    name = "integer"

    def __init__(self, low: int = INT64_MIN, high: int = INT64_MAX) -> None:
        """Accept integers from ``low`` to ``high`` inclusive."""
        self.low = low
        self.high = high

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        """The integer ``value`` stands for; refuse non-ASCII digits, ``_`` and out-of-range."""
        if isinstance(value, bool):
            self.fail(f"{value!r} is not an integer", param, ctx)
        if isinstance(value, int):
            number = value
        else:
            text = str(value).strip()
            body = text[1:] if text[:1] in {"+", "-"} else text
            if not (body.isascii() and body.isdigit()):
                self.fail(f"{value!r} is not an integer (ASCII digits only)", param, ctx)
            if len(body) > 30:
                number = INT64_MAX + 1 if text[:1] != "-" else INT64_MIN - 1
            else:
                number = int(text)
        if not self.low <= number <= self.high:
            name = _param_name(param)
            shown = str(value) if len(str(value)) <= 40 else str(value)[:39] + "…"
            raise ValidationError(
                f"{name}: {shown} is out of range ({self.low} to {self.high})",
                field=name,
                value=value,
            )
        return number


def _param_name(param: click.Parameter | None) -> str:
    if param is None:
        return "value"
    if isinstance(param, click.Option) and param.opts:
        return max(param.opts, key=len)
    return (param.human_readable_name or param.name or "value").upper()


#: A signed 64-bit integer: what ``type=int`` means on every ``crm`` command.
INT64 = BoundedInt()


class AsciiFloat(click.ParamType[float]):
    """A float written with ASCII characters only (``float()`` also reads full-width digits)."""

    name = "number"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        """The float ``value`` stands for; refuse non-ASCII digits and ``_`` separators."""
        if isinstance(value, float):
            return value
        text = str(value).strip()
        if not text.isascii() or "_" in text:
            self.fail(f"{value!r} is not a number (ASCII digits only)", param, ctx)
        try:
            return float(text)
        except ValueError:
            self.fail(f"{value!r} is not a number", param, ctx)


#: What ``type=float`` means on every ``crm`` command.
ASCII_FLOAT = AsciiFloat()


def bound_integers(command: click.Command) -> None:
    """Give every ``type=int`` parameter of ``command`` and its subcommands the type :data:`INT64`.

    ``type=float`` parameters get :data:`ASCII_FLOAT`.

    An open-ended ``click.IntRange`` gets the 64-bit bound as its missing end
    (out of range there is click's usage error, as for the range's own end).
    Called by :func:`crmcore.cli.build_cli` after plugins registered their
    commands, so an id or count of any command that would overflow the
    database's 64-bit integers is refused with one line instead of a driver error.
    """
    for param in command.params:
        if param.type is click.INT:
            param.type = INT64
        elif param.type is click.FLOAT:
            param.type = ASCII_FLOAT
        elif isinstance(param.type, click.IntRange) and None in (param.type.min, param.type.max):
            kind = param.type
            param.type = click.IntRange(
                INT64_MIN if kind.min is None else kind.min,
                INT64_MAX if kind.max is None else kind.max,
                min_open=kind.min_open,
                max_open=kind.max_open,
                clamp=kind.clamp,
            )
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            bound_integers(sub)


__all__ = ["ASCII_FLOAT", "INT64", "AsciiFloat", "BoundedInt", "bound_integers"]
