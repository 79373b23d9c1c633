"""Normalised identity keys used for duplicate detection and exact-match search.

Two customers are duplicates when they share a normalised email, phone number
or (for organisations) organisation name. The keys live in unique columns, so
the database itself enforces the rule even under concurrent writers.

Phone numbers are parsed with `phonenumbers` (Google's libphonenumber) and
keyed in E.164 (``+8613800138000``): a national form (``138 0013 8000``) is
read in the configured default region (``[customers] default_region``,
:data:`DEFAULT_REGION` when unset), so the national and international forms
of one number are one key. Organisation names lose case, accents, punctuation
(full-width included) and legal-form suffixes, Latin (``Inc``, ``GmbH`` ...)
and Chinese (``有限公司``, ``集团`` ...): see :data:`CHINESE_LEGAL_FORMS`.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import phonenumbers

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
#: Chinese legal-form suffixes stripped from the end of an organisation name, longest
#: first. ``控股`` (holding) and ``分公司`` (branch) are deliberately absent: a holding
#: company and a branch are registered entities of their own, distinct from the company.
CHINESE_LEGAL_FORMS = (
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "股份公司",
    "公司",
    "集团",
)
#: Endings that keep the name whole: a branch (``分公司``) or head office (``总公司``) is
#: not the company itself, and stripping ``公司`` from them would leave a stray character.
CHINESE_KEPT_FORMS = ("分公司", "总公司")
#: A Chinese suffix is stripped only while at least this many characters remain.
MIN_ORG_STEM = 2
#: Region used for national-form phone numbers when ``[customers] default_region`` is unset.
DEFAULT_REGION = "CN"
#: ``default_region`` value meaning "no default": only international forms are accepted.
NO_REGION = phonenumbers.UNKNOWN_REGION
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)
_NON_DIGIT = re.compile(r"[^0-9]")
_NOT_PHONE = re.compile(r"[^0-9\s+().\-/]")
_E164_SHAPED = re.compile(r"\+[1-9][0-9]{6,14}")
_NATIONAL_SHAPED = re.compile(r"[1-9][0-9]*(?:[ \-][0-9]+)*")
_REASONS = {
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
    phonenumbers.ValidationResult.TOO_SHORT: "too short",
    phonenumbers.ValidationResult.TOO_LONG: "too long",
    phonenumbers.ValidationResult.INVALID_LENGTH: "invalid length",
    phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "too short: a local number without "
    "its area code",
}
_PARSE_REASONS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "no valid country code",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "not a number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
    phonenumbers.NumberParseException.TOO_LONG: "too long",
}


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


def check_region(region: str | None) -> str:
    """``region`` as a region code phone parsing accepts (upper case); ValueError if unknown.

    ``None`` means :data:`DEFAULT_REGION`; :data:`NO_REGION` (``"ZZ"``) means no default.
    """
    if region is None:
        return DEFAULT_REGION
    code = region.strip().upper()
    if code != NO_REGION and code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{region!r} is not a region code (ISO 3166 alpha-2, e.g. CN, US, GB)")
    return code


@functools.lru_cache(maxsize=1024)
def _country(calling_code: int) -> tuple[re.Pattern[str] | None, bool] | None:
    """For a known calling code: its national-prefix pattern, and whether metadata exists."""
    region = phonenumbers.region_code_for_country_code(calling_code)
    if region == NO_REGION:
        return None
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(calling_code, region)
    if metadata is None:
        return None
    prefix = metadata.national_prefix_for_parsing
    return (re.compile(prefix) if prefix else None), True


@functools.lru_cache(maxsize=4096)
def _length_reason(calling_code: int, length: int) -> int:
    """``is_possible_number_with_reason`` for a number of this calling code and length.

    For the UNKNOWN number type it depends on nothing else, so it is computed
    once per (calling code, length).
    """
    number = phonenumbers.PhoneNumber(country_code=calling_code, national_number=int("9" * length))
    return int(phonenumbers.is_possible_number_with_reason(number))


def _fast_e164(value: str) -> str | None:
    """The key of an input already written in E.164, without a full parse; None to parse.

    Exactly what :func:`phonenumbers.parse` would give: the calling code is the
    prefix that names a country (calling codes are prefix-free), and the input
    goes to the full parser whenever parsing could strip a national prefix
    (the country's ``national_prefix_for_parsing`` matches the number) or the
    length is not plainly possible.
    """
    digits = value[1:]
    for size in (1, 2, 3):
        code = int(digits[:size])
        known = _country(code)
        if known is None:
            continue
        prefix, _ = known
        national = digits[size:]
        if prefix is not None and prefix.match(national):
            return None
        if _length_reason(code, len(national)) != phonenumbers.ValidationResult.IS_POSSIBLE:
            return None
        return value
    return None


@functools.lru_cache(maxsize=512)
def _region(region: str) -> tuple[int, re.Pattern[str] | None, re.Pattern[str] | None] | None:
    """A region's calling code, international-prefix and national-prefix patterns."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.country_code is None:
        return None
    idd = metadata.international_prefix
    prefix = metadata.national_prefix_for_parsing
    return (
        metadata.country_code,
        re.compile(idd) if idd else None,
        re.compile(prefix) if prefix else None,
    )


def _fast_national(value: str, region: str) -> str | None:
    """The key of a national-form number (digits, spaces, dashes) without a full parse.

    None (parse it) whenever parsing could do more than prefix the calling
    code: the digits start with an international prefix, a national prefix
    or carrier code the region strips, or the calling code itself; or their
    length is not plainly possible in the region.
    """
    known = _region(region)
    if known is None:
        return None
    code, idd, prefix = known
    digits = value.replace(" ", "").replace("-", "")
    if idd is not None and idd.match(digits):
        return None
    if prefix is not None and prefix.match(digits):
        return None
    if digits.startswith(str(code)):
        return None
    if _length_reason(code, len(digits)) != phonenumbers.ValidationResult.IS_POSSIBLE:
        return None
    return f"+{code}{digits}"


def normalise_phone(phone: str, region: str | None = DEFAULT_REGION) -> str:
    """The E.164 key of a phone number (``+8613800138000``); ValueError saying why not.

    Full-width and other non-ASCII digits are folded to ASCII first
    (:func:`fold_phone`); letters and other characters that are not written in
    phone numbers are refused. The number is parsed with `phonenumbers`: a
    national form is read in ``region`` (``"ZZ"``: none, so it needs ``+`` or
    ``00``), ``00`` and the region's other international prefixes count as
    ``+``. It must be a *possible* number (its length fits its country and
    it is not a local number without an area code); numbers whose length fits but
    that no operator has been allocated are accepted, so that test ranges
    and newly opened ranges are not refused. Input in E.164, and plain
    national digits, take fast paths that give what a full parse gives;
    full parses are cached.
    """
    value = fold_phone(phone).strip()
    if _NOT_PHONE.search(value):
        raise ValueError(f"not a valid phone number: {phone!r}")
    if _E164_SHAPED.fullmatch(value) and (fast := _fast_e164(value)) is not None:
        return fast
    code = NO_REGION if region is None else region
    if (
        code != NO_REGION
        and _NATIONAL_SHAPED.fullmatch(value)
        and (fast := _fast_national(value, code)) is not None
    ):
        return fast
    national = not value.startswith(("+", "00"))
    where = f" for region {code}" if code != NO_REGION and national else ""
    key, reason = _full_parse(value, code)
    if key is None:
        raise ValueError(f"{phone!r} is not a valid number{where} ({reason})")
    return key


@functools.lru_cache(maxsize=65536)
def _full_parse(value: str, region: str) -> tuple[str | None, str]:
    """``(E.164 key, "")`` of a number parsed by `phonenumbers`, or ``(None, reason)``.

    Cached: a re-import of the same file parses each number once.
    """
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        reason = _PARSE_REASONS.get(exc.error_type, "not a number")
        international = value.startswith(("+", "00"))
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            reason = "unknown country code" if international else reason
        return None, reason
    result = phonenumbers.is_possible_number_with_reason(number)
    if result != phonenumbers.ValidationResult.IS_POSSIBLE:
        return None, _REASONS.get(result, "not a possible number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), ""


def legacy_phone_key(phone: str) -> str:
    """The phone key of the scheme before E.164 (crmcore_0009 and earlier), for old rows.

    The digits, with a leading ``+`` for international numbers (``00`` counts
    as ``+``); ValueError when fewer than 6 or more than 15 digits remain.
    Lookups add its blind index to the stored forms of a phone number, so rows
    whose key is still an index of this form (encrypted rows the migration
    could not re-key) stay findable.
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


def _strip_chinese_form(word: str) -> str | None:
    """``word`` without one Chinese legal-form suffix, or None when none can go."""
    if word.endswith(CHINESE_KEPT_FORMS):
        return None
    for suffix in CHINESE_LEGAL_FORMS:
        if word.endswith(suffix):
            stem = word[: -len(suffix)]
            return stem if len(stem) >= MIN_ORG_STEM else None
    return None


def normalise_org_name(name: str) -> str:
    """An organisation name without punctuation, case, accents or legal-form suffixes.

    ``"ACME, Inc."``, ``"Acme Inc"`` and ``"acme"`` all give ``"acme"``;
    ``"华为技术有限公司"``, ``"华为技术 (集团)"`` and ``"华为技术"`` give ``"华为技术"``.
    Full-width letters and punctuation count as their ASCII forms (NFKC, then
    NFKD for accents). Suffixes go from the end, repeatedly (``集团有限公司``
    loses both), but never the whole name: a Latin suffix is kept when it is
    the only word, a Chinese one when fewer than :data:`MIN_ORG_STEM`
    characters would remain (``"有限公司"`` stays ``"有限公司"``).
    """
    folded = unicodedata.normalize("NFKC", name) if not name.isascii() else name
    words = _NON_WORD.sub(" ", normalise_name(folded).replace(".", "")).split()
    while words:
        last = words[-1]
        if len(words) > 1 and (last in _LEGAL_SUFFIXES or last in CHINESE_LEGAL_FORMS):
            words.pop()
            continue
        stem = _strip_chinese_form(last) if not last.isascii() else None
        if stem is None:
            break
        words[-1] = stem
    return " ".join(words)
