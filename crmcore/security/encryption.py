"""Encryption at rest of sensitive customer fields, with blind indexes for exact-match lookups.

When a key is configured (environment variable ``CRM_ENCRYPTION_KEY``: 32
random bytes, base64url-encoded; make one with ``crm security new-key``), the
fields listed in ``[security] encrypted_fields`` (default: email, phone,
address, birth_date) are not stored in their plaintext columns. They are
sealed together with AES-256-GCM into the ``sealed`` column, bound to the
customer's id, and the duplicate-detection keys (normalised email and phone)
are stored as HMAC-SHA256 blind indexes, so exact-match search and the
"no two customers with one email" rule keep working.

Blind indexes are keyed by ``CRM_INDEX_KEY`` when it is set (a separate
secret that is never rotated: stored as ``b2:<hmac>``), else by a key derived
from the current ``CRM_ENCRYPTION_KEY`` (``bi:<hmac>``, the scheme of
crmcore before the index key existed). A lookup matches every form a stored
key can have (:meth:`FieldCipher.stored_forms`): the plaintext normalised
value (rows stored before encryption was enabled), the current scheme's
index and the data-key index of every configured key, so a database in the
middle of enabling encryption or of a rotation is searched completely.

Rotation: put the new key in ``CRM_ENCRYPTION_KEY``, the old ones in
``CRM_ENCRYPTION_OLD_KEYS`` (comma-separated), and run ``crm security
rotate-key`` (:mod:`crmcore.services.key_rotation`). Rows stored before encryption
was enabled are encrypted by the same command.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from crmcore.errors import ConfigError, StorageError

#: Environment variable holding the current key.
KEY_ENV = "CRM_ENCRYPTION_KEY"
#: Environment variable holding retired keys still needed to read old rows.
OLD_KEYS_ENV = "CRM_ENCRYPTION_OLD_KEYS"
#: Environment variable holding the blind-index key (never rotated; optional).
INDEX_KEY_ENV = "CRM_INDEX_KEY"
#: Fields encrypted unless the configuration says otherwise.
DEFAULT_FIELDS = ("email", "phone", "address", "birth_date")
#: Fields that may be encrypted (their plaintext columns can be left empty).
ENCRYPTABLE_FIELDS = frozenset({"email", "phone", "address", "birth_date", "company_name"})
_VERSION = "v1"
#: Prefix of a blind index under the data key (legacy) and under CRM_INDEX_KEY.
DATA_KEY_INDEX_PREFIX = "bi:"
INDEX_KEY_INDEX_PREFIX = "b2:"


class UnreadableError(StorageError):
    """A customer's sealed fields cannot be opened (unknown key, failed authentication)."""

    def __init__(self, message: str, *, customer_id: int) -> None:
        super().__init__(message)
        self.customer_id = customer_id


def is_blind_index(value: str) -> bool:
    """Whether a stored identity key is a blind index rather than a plaintext value."""
    return value.startswith((DATA_KEY_INDEX_PREFIX, INDEX_KEY_INDEX_PREFIX))


def sealed_key_id(sealed: str) -> str | None:
    """The fingerprint of the key a sealed value was made with (``None`` if malformed)."""
    parts = sealed.split(":", 2)
    return parts[1] if len(parts) == 3 else None


def new_key() -> str:
    """A fresh random key, base64url-encoded, for ``CRM_ENCRYPTION_KEY``."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def _decode_key(text: str, where: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raw = b""
    if len(raw) != 32:
        raise ConfigError(f"{where}: must be 32 bytes, base64url-encoded (crm security new-key)")
    return raw


def _derive(key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(key)


class FieldCipher:
    """Seals and opens customer fields; computes blind indexes. One per CRM."""

    def __init__(
        self,
        key: bytes,
        old_keys: Iterable[bytes] = (),
        fields: Iterable[str] = DEFAULT_FIELDS,
        index_key: bytes | None = None,
    ) -> None:
        self.fields = tuple(fields)
        unknown = set(self.fields) - ENCRYPTABLE_FIELDS
        if unknown:
            raise ConfigError(
                f"security.encrypted_fields: {sorted(unknown)[0]!r} cannot be encrypted "
                f"(choose from {', '.join(sorted(ENCRYPTABLE_FIELDS))})"
            )
        self._keys: dict[str, bytes] = {}
        legacy: dict[str, bytes] = {}
        for k in (key, *old_keys):
            self._keys.setdefault(self.key_id(k), _derive(k, b"crmcore field encryption"))
            legacy.setdefault(self.key_id(k), _derive(k, b"crmcore blind index"))
        self.current_key_id = self.key_id(key)
        #: Fingerprint of CRM_INDEX_KEY, or ``None`` when indexes use the data key.
        self.index_key_id = self.key_id(index_key) if index_key is not None else None
        # (prefix, HMAC key) of every index form a stored key can have; the first is current.
        self._index_keys: list[tuple[str, bytes]] = [
            (DATA_KEY_INDEX_PREFIX, k) for k in legacy.values()
        ]
        if index_key is not None:
            self._index_keys.insert(
                0, (INDEX_KEY_INDEX_PREFIX, _derive(index_key, b"crmcore blind index v2"))
            )

    @staticmethod
    def key_id(key: bytes) -> str:
        """A short public fingerprint of a key, stored with each sealed value."""
        return hashlib.sha256(b"crmcore key id" + key).hexdigest()[:12]

    @classmethod
    def from_environment(cls, fields: Iterable[str] | None, required: bool) -> FieldCipher | None:
        """The cipher configured by the environment, or ``None`` when no key is set."""
        text = os.environ.get(KEY_ENV, "").strip()
        if not text:
            if required:
                raise ConfigError(f"security.encryption is on but {KEY_ENV} is not set")
            return None
        old = [
            _decode_key(part, OLD_KEYS_ENV)
            for part in os.environ.get(OLD_KEYS_ENV, "").split(",")
            if part.strip()
        ]
        index_text = os.environ.get(INDEX_KEY_ENV, "").strip()
        return cls(
            _decode_key(text, KEY_ENV),
            old,
            DEFAULT_FIELDS if fields is None else fields,
            _decode_key(index_text, INDEX_KEY_ENV) if index_text else None,
        )

    def is_current(self, sealed: str) -> bool:
        """Whether a sealed value was made with the current key."""
        return sealed_key_id(sealed) == self.current_key_id

    def seal(self, customer_id: int, values: Mapping[str, Any]) -> str | None:
        """Encrypt the JSON-safe ``values`` for one customer (``None`` when all are empty)."""
        present = {k: v for k, v in values.items() if v is not None}
        if not present:
            return None
        nonce = os.urandom(12)
        data = json.dumps(present, sort_keys=True, separators=(",", ":")).encode()
        sealed = AESGCM(self._keys[self.current_key_id]).encrypt(
            nonce, data, self._aad(customer_id)
        )
        payload = base64.b64encode(nonce + sealed).decode("ascii")
        return f"{_VERSION}:{self.current_key_id}:{payload}"

    def open(self, customer_id: int, sealed: str) -> dict[str, Any]:
        """Decrypt a sealed value of this customer; StorageError if it cannot be."""
        try:
            version, key_id, payload = sealed.split(":", 2)
        except ValueError:
            raise UnreadableError(
                f"customer {customer_id}: sealed fields are malformed", customer_id=customer_id
            ) from None
        key = self._keys.get(key_id)
        if version != _VERSION or key is None:
            raise UnreadableError(
                f"customer {customer_id}: sealed with unknown key {key_id}; "
                f"add that key to {OLD_KEYS_ENV}",
                customer_id=customer_id,
            )
        try:
            raw = base64.b64decode(payload, validate=True)
            data = AESGCM(key).decrypt(raw[:12], raw[12:], self._aad(customer_id))
        except (InvalidTag, binascii.Error, ValueError):
            raise UnreadableError(
                f"customer {customer_id}: sealed fields fail authentication",
                customer_id=customer_id,
            ) from None
        result: dict[str, Any] = json.loads(data)
        return result

    @property
    def uses_index_key(self) -> bool:
        """Whether blind indexes are keyed by CRM_INDEX_KEY (else by the current data key)."""
        return self.index_key_id is not None

    def blind_index(self, kind: str, normalised: str | None) -> str | None:
        """The keyed hash stored instead of a normalised email or phone number (current scheme)."""
        if normalised is None:
            return None
        prefix, key = self._index_keys[0]
        return _index(prefix, key, kind, normalised)

    def stored_forms(self, kind: str, normalised: str) -> tuple[str, ...]:
        """Every value a stored key for ``normalised`` may hold: current index first.

        That is the index of the current scheme, the data-key index of every
        configured key (current and old) and the plaintext ``normalised``
        itself (rows stored before encryption was enabled).
        """
        forms = [_index(prefix, key, kind, normalised) for prefix, key in self._index_keys]
        forms.append(normalised)
        return tuple(dict.fromkeys(forms))

    @staticmethod
    def _aad(customer_id: int) -> bytes:
        return f"crm_customers:{customer_id}".encode()


def _index(prefix: str, key: bytes, kind: str, normalised: str) -> str:
    digest = hmac.new(key, f"{kind}:{normalised}".encode(), hashlib.sha256)
    return prefix + digest.hexdigest()[:40]
