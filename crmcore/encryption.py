"""Encryption at rest of sensitive customer fields, with blind indexes for exact-match lookups.

When a key is configured (environment variable ``CRM_ENCRYPTION_KEY``: 32
random bytes, base64url-encoded; make one with ``crm security new-key``), the
fields listed in ``[security] encrypted_fields`` (default: email, phone,
address, birth_date) are not stored in their plaintext columns. They are
sealed together with AES-256-GCM into the ``sealed`` column, bound to the
customer's id, and the duplicate-detection keys (normalised email and phone)
are stored as HMAC-SHA256 blind indexes, so exact-match search and the
"no two customers with one email" rule keep working.

Rotation: put the new key in ``CRM_ENCRYPTION_KEY``, the old ones in
``CRM_ENCRYPTION_OLD_KEYS`` (comma-separated), and run ``crm security
rotate-key``; every customer is re-sealed and re-indexed with the new key in
one transaction. Rows stored before encryption was enabled are encrypted by
the same command.
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
#: Fields encrypted unless the configuration says otherwise.
DEFAULT_FIELDS = ("email", "phone", "address", "birth_date")
#: Fields that may be encrypted (their plaintext columns can be left empty).
ENCRYPTABLE_FIELDS = frozenset({"email", "phone", "address", "birth_date", "company_name"})
_VERSION = "v1"


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
        self, key: bytes, old_keys: Iterable[bytes] = (), fields: Iterable[str] = DEFAULT_FIELDS
    ) -> None:
        self.fields = tuple(fields)
        unknown = set(self.fields) - ENCRYPTABLE_FIELDS
        if unknown:
            raise ConfigError(
                f"security.encrypted_fields: {sorted(unknown)[0]!r} cannot be encrypted "
                f"(choose from {', '.join(sorted(ENCRYPTABLE_FIELDS))})"
            )
        self._keys: dict[str, bytes] = {}
        for k in (key, *old_keys):
            self._keys.setdefault(self.key_id(k), _derive(k, b"crmcore field encryption"))
        self.current_key_id = self.key_id(key)
        self._index_key = _derive(key, b"crmcore blind index")

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
        return cls(_decode_key(text, KEY_ENV), old, DEFAULT_FIELDS if fields is None else fields)

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
            raise StorageError(f"customer {customer_id}: sealed fields are malformed") from None
        key = self._keys.get(key_id)
        if version != _VERSION or key is None:
            raise StorageError(
                f"customer {customer_id}: sealed with unknown key {key_id}; "
                f"add that key to {OLD_KEYS_ENV}"
            )
        raw = base64.b64decode(payload)
        try:
            data = AESGCM(key).decrypt(raw[:12], raw[12:], self._aad(customer_id))
        except InvalidTag:
            raise StorageError(
                f"customer {customer_id}: sealed fields fail authentication"
            ) from None
        result: dict[str, Any] = json.loads(data)
        return result

    def blind_index(self, kind: str, normalised: str | None) -> str | None:
        """The keyed hash stored instead of a normalised email or phone number."""
        if normalised is None:
            return None
        digest = hmac.new(self._index_key, f"{kind}:{normalised}".encode(), hashlib.sha256)
        return "bi:" + digest.hexdigest()[:40]

    @staticmethod
    def _aad(customer_id: int) -> bytes:
        return f"crm_customers:{customer_id}".encode()
