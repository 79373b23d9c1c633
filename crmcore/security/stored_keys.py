"""Identity keys as stored: plaintext, or blind indexes, and every form a lookup must match.

A customer's normalised email, phone and organisation name live in unique
columns (``email_norm``, ``phone_norm``, ``org_norm``). With encryption on,
a new row stores the current blind index; rows written earlier may still hold
the plaintext value or an index made under another configured key (before
encryption was enabled, or before a rotation finished). Every lookup and
duplicate check therefore compares with :func:`stored_forms`, the complete
set of values that can mean "this email" right now.

Phone keys are E.164 since crmcore_0010. The migration re-keys plaintext
phone keys; an encrypted row's key is a blind index whose plaintext the
migration cannot read, so until ``crm security rotate`` re-indexes it, it
may be the index of the earlier digits-only form
(:func:`crmcore.model.identity.legacy_phone_key`): the stored forms of a
phone number include the indexes of that form too (:func:`phone_forms`).
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from crmcore.model.identity import legacy_phone_key
from crmcore.security.encryption import FieldCipher

#: Identity-key column -> the ``kind`` a blind index is computed for.
KEY_KINDS = {"email_norm": "email", "phone_norm": "phone", "org_norm": "org"}


def stored_forms(cipher: FieldCipher | None, kind: str, normalised: str) -> tuple[str, ...]:
    """Every value a stored key of ``kind`` (email, phone, org) may hold for ``normalised``.

    Without encryption that is ``normalised`` itself; with it, the current
    blind index first, then the other index forms and the plaintext.
    """
    if cipher is None:
        return (normalised,)
    return cipher.stored_forms(kind, normalised)


def phone_forms(cipher: FieldCipher | None, normalised: str, raw: str | None) -> tuple[str, ...]:
    """Every value a stored phone key may hold for the number ``raw`` (E.164 ``normalised``).

    :func:`stored_forms` of the E.164 key first (its current index first), then,
    with encryption on, the forms of the digits-only key of before crmcore_0010.
    """
    forms = stored_forms(cipher, "phone", normalised)
    if cipher is None or raw is None:
        return forms
    try:
        legacy = legacy_phone_key(raw)
    except ValueError:
        return forms
    if legacy == normalised:
        return forms
    return tuple(dict.fromkeys((*forms, *cipher.stored_forms("phone", legacy))))


@attrs.frozen
class IdentityKeys:
    """The normalised keys of one customer that must be unique."""

    email: str | None
    phone: str | None
    org: str | None
    #: Column -> normalised plaintext, when the keys above are blind indexes (for messages).
    plain: Mapping[str, str] = attrs.field(factory=dict, eq=False)
    #: Column -> every stored form of that key (see :func:`stored_forms`), when blinded.
    forms_by_column: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict, eq=False)
    #: The phone number as written, for the index forms of the earlier key (:func:`phone_forms`).
    phone_input: str | None = attrs.field(default=None, eq=False)
    _pairs: tuple[tuple[str, str], ...] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        cols = (("email_norm", self.email), ("phone_norm", self.phone), ("org_norm", self.org))
        object.__setattr__(self, "_pairs", tuple((c, v) for c, v in cols if v is not None))

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """(column, value) for every key that is set."""
        return self._pairs

    def forms(self, column: str, value: str) -> tuple[str, ...]:
        """The values a stored row may hold for this key (``(value,)`` when not blinded)."""
        return self.forms_by_column.get(column) or (value,)

    def shown(self, column: str, value: str) -> str:
        """The value to show in an error message (never a blind index)."""
        return self.plain.get(column, value)

    def blinded(self, cipher: FieldCipher | None) -> IdentityKeys:
        """The keys as stored: blind indexes when encryption is on, with all their forms."""
        if cipher is None:
            return self
        forms: dict[str, tuple[str, ...]] = {}
        for column, value in self._pairs:
            if column == "phone_norm":
                forms[column] = phone_forms(cipher, value, self.phone_input)
            else:
                forms[column] = cipher.stored_forms(KEY_KINDS[column], value)
        email = forms["email_norm"][0] if self.email is not None else None
        phone = forms["phone_norm"][0] if self.phone is not None else None
        org = self.org
        if org is not None and "company_name" in cipher.fields:
            org = forms["org_norm"][0]
        return IdentityKeys(email, phone, org, dict(self._pairs), forms, self.phone_input)


__all__ = ["KEY_KINDS", "IdentityKeys", "phone_forms", "stored_forms"]
