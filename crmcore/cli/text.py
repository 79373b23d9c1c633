"""Plain text safe to print on a terminal: no escape sequences, controls or bidi overrides.

What error lines and ``click.echo`` need, without rich (``crm --help`` and
error reporting must not import it); :mod:`crmcore.cli.output` builds the rich
side on it.
"""

from __future__ import annotations

import re

# ECMA-48 escape sequences: CSI (ESC [ or 8-bit CSI ... final byte), the string
# controls OSC/DCS/SOS/PM/APC up to their terminator (BEL or ST), and two-byte
# escapes. Removed whole, so no parameter bytes are left behind as visible junk.
_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
#: C0 controls but tab and newline, DEL, C1 controls, and the bidirectional
#: embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) that can make
#: text display in an order other than the one it is stored in.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_IN_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def strip_control(value: object, *, newlines: bool = True) -> str:
    """``str(value)`` without escape sequences, control characters or bidi overrides.

    Tab and newline are kept when ``newlines`` is true; otherwise every control
    character (newline and tab included) becomes one space, which keeps an
    error message on one line.
    """
    text = value if isinstance(value, str) else str(value)
    if text.isascii() and text.isprintable():
        return text
    text = _ESCAPE_SEQUENCE.sub("", text)
    return (_UNSAFE if newlines else _UNSAFE_IN_LINE).sub("" if newlines else " ", text)


def safe_line(value: object) -> str:
    """One line of plain text (no rich markup), for error messages and ``click.echo``."""
    return strip_control(value, newlines=False)


__all__ = ["safe_line", "strip_control"]
