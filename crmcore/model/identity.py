"""Normalised identity keys used for duplicate detection and exact-match search.

Two customers are duplicates when they share a normalised email, phone number
or (for organisations) organisation name. The keys live in unique columns, so
the database itself enforces the rule even under concurrent writers.
"""

from __future__ import annotations

import re
import unicodedata

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LEGAL_SUFFIXES = frozenset(
    {
        "inc",
        "incorporated",
        "ltd",
        "limited",
        "llc",
        "llp",
        "plc",
        "corp",
        "corporation",
        "co",
        "company",
        "gmbh",
        "ag",
        "sa",
        "sas",
        "sarl",
        "srl",
        "spa",
        "bv",
        "nv",
        "oy",
        "ab",
        "as",
        "kg",
        "pty",
        "pte",
        "kk",
    }
)
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)
_NON_DIGIT = re.compile(r"[^0-9]")
_NOT_PHONE = re.compile(r"[^0-9\s+().\-/]")


def normalise_email(email: str) -> str:
    """Lower-case and strip an email address; raise ValueError when it is not one."""
    value = email.strip().lower()
    if not _EMAIL.match(value):
        raise ValueError(f"not a valid email address: {email!r}")
    return value


def fold_phone(phone: str) -> str:
    """``phone`` with full-width characters and non-ASCII digits written in ASCII.

    NFKC turns full-width digits, the full-width plus, parentheses and spaces
    into their ASCII forms; any other decimal digit (Arabic-Indic, Devanagari
    ...) becomes its ASCII digit. Applied to the phone field only: on other
    text NFKC would change what was written.
    """
    if phone.isascii():
        return phone
    folded = unicodedata.normalize("NFKC", phone)
    return "".join(
        str(unicodedata.decimal(ch)) if not ch.isascii() and ch.isdecimal() else ch for ch in folded
    )


def normalise_phone(phone: str) -> str:
    """Keep the digits, with a leading ``+`` for international numbers (``00`` counts as ``+``).

    Full-width and other non-ASCII digits are folded to ASCII first (:func:`fold_phone`).
    Raise ValueError when fewer than 6 or more than 15 digits remain (E.164 allows 15).
    """
    value = fold_phone(phone).strip()
    international = value.startswith("+") or value.startswith("00")
    digits = _NON_DIGIT.sub("", value)
    if value.startswith("00"):
        digits = digits[2:]
    if _NOT_PHONE.search(value):
        raise ValueError(f"not a valid phone number: {phone!r}")
    if not 6 <= len(digits) <= 15:
        raise ValueError(f"not a valid phone number (6 to 15 digits): {phone!r}")
    return ("+" if international else "") + digits


def normalise_name(name: str) -> str:
    """Case-folded, accent-free, whitespace-collapsed form of a name, for search."""
    if name.isascii():  # NFKD leaves ASCII unchanged and it has no combining marks
        return " ".join(name.casefold().split())
    decomposed = unicodedata.normalize("NFKD", name)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())


def normalise_org_name(name: str) -> str:
    """An organisation name without punctuation, case, accents or legal-form suffixes.

    ``"ACME, Inc."``, ``"Acme Inc"`` and ``"acme"`` all give ``"acme"``.
    """
    words = _NON_WORD.sub(" ", normalise_name(name).replace(".", "")).split()
    while len(words) > 1 and words[-1] in _LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)
