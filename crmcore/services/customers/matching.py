"""Probable duplicates: the comparison keys of a customer, blocking and the pair score.

Pure functions over :class:`MatchRecord` (no database): the service in
:mod:`.duplicates` loads the records. Never all pairs: a pair is compared
only when the two customers share a *block*:

* exact blocks: the same phone (E.164), the same canonical email (case,
  dots and ``+tag`` of gmail-style local parts), the same email local part
  on different domains, and (only when the least score asked for is at most
  0.55, what the same name alone scores) the same sorted-word name; every
  pair of a block up to :data:`MAX_BLOCK` members, beyond that each member
  with its :data:`WINDOW` next ones;
* neighbourhood blocks: customers of the same company, the same city, and
  organisations whose key starts alike, each sorted by the name's sorted
  words (``li wei`` for ``Wei Li``: transposed names are adjacent), then by
  that key reversed (a typo at either end keeps the pair adjacent), and
  compared with their :data:`WINDOW` next neighbours when the names are alike
  enough for the pair to reach the least score with what the block shares.

The score is documented in ``docs/data-quality.md``; :func:`score_pair` is it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import groupby

import attrs
from rapidfuzz import fuzz

#: Exact blocks larger than this are compared by neighbourhood, not every pair.
MAX_BLOCK = 50
#: How many following neighbours each customer is compared with in a sorted block.
WINDOW = 6
#: Weights of name similarity and of the other evidence, for people and organisations.
NAME_WEIGHT = {False: 0.55, True: 0.75}
#: Evidence values, combined as a noisy-or (1 - product of (1 - value)).
EVIDENCE = {
    "same phone": 1.0,
    "same email": 1.0,
    "same email local part": 0.7,
    "same company": 0.8,
    "same city": 0.6,
}
#: Evidence about where a customer is rather than who: only the strongest of these counts.
CONTEXT = frozenset({"same company", "same city"})
#: Email domains whose local part ignores dots (gmail-style).
DOTLESS_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
#: Local parts too common to say anything about the person.
GENERIC_LOCAL_PARTS = frozenset(
    {"info", "sales", "admin", "contact", "office", "service", "support", "hello", "mail"}
)
_CITY_MARKERS = ("市", "县")


@attrs.frozen
class MatchRecord:
    """What the duplicate search compares of one customer (all keys already normalised)."""

    id: int
    organisation: bool
    name: str
    phone: str | None = None
    email: str | None = None
    company: str | None = None
    city: str | None = None

    @property
    def local_part(self) -> str | None:
        """The canonical email's local part, when it is specific enough to compare."""
        if self.email is None:
            return None
        local = self.email.split("@", 1)[0].replace(".", "")  # dots: gmail-style or not
        return local if len(local) >= 5 and local not in GENERIC_LOCAL_PARTS else None


def canonical_email(email: str) -> str:
    """``email`` lower-cased, without a ``+tag``, and without dots on gmail-style domains."""
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain == "googlemail.com":
        domain = "gmail.com"
    if domain in DOTLESS_DOMAINS:
        local = local.replace(".", "")
    return f"{local}@{domain}"


def city_of(address: str | None) -> str | None:
    """The city of an address: its last comma-separated part, or up to ``市``/``县``.

    ``"1 Main St, Springfield"`` -> ``"springfield"``; ``"广东省深圳市南山区..."``
    -> ``"深圳市"``. None when neither form is there.
    """
    if not address:
        return None
    text = " ".join(address.casefold().split())
    for marker in _CITY_MARKERS:
        at = text.find(marker)
        if at > 0:
            start = text.rfind("省", 0, at) + 1
            return text[start : at + 1].strip() or None
    if "," in text:
        last = text.rsplit(",", 1)[1].strip(" .")
        return last.lstrip("0123456789- ").strip() or None
    return None


def name_key(name: str) -> str:
    """A normalised name with its words sorted (``"li wei"`` for ``"Wei Li"``)."""
    return " ".join(sorted(name.split()))


def name_similarity(a: MatchRecord, b: MatchRecord) -> float:
    """0-1: token-sort ratio of the names (word order ignored); containment for organisations."""
    similarity = fuzz.token_sort_ratio(a.name, b.name) / 100
    if a.organisation and b.organisation:
        short, long = sorted((a.name.replace(" ", ""), b.name.replace(" ", "")), key=len)
        if len(short) >= 4 and long.startswith(short):
            similarity = max(similarity, 0.95)
    return similarity


def score_pair(a: MatchRecord, b: MatchRecord) -> tuple[float, tuple[str, ...]]:
    """The score (0-1) of a pair and the reasons behind it.

    ``score = w * name_similarity + (1 - w) * evidence``, with ``w`` 0.55 for
    people and 0.75 for organisations (an organisation's name says more) and
    ``evidence`` the noisy-or of the :data:`EVIDENCE` values the pair shares,
    where the :data:`CONTEXT` ones (company, city) count once, by the stronger.
    """
    reasons: list[str] = []
    if a.phone is not None and a.phone == b.phone:
        reasons.append("same phone")
    if a.email is not None and a.email == b.email:
        reasons.append("same email")
    elif a.local_part is not None and a.local_part == b.local_part:
        reasons.append("same email local part")
    if a.company is not None and a.company == b.company:
        reasons.append("same company")
    if a.city is not None and a.city == b.city:
        reasons.append("same city")
    remaining = 1.0
    context = 0.0  # the same company and the same city say much the same: the stronger counts
    for reason in reasons:
        if reason in CONTEXT:
            context = max(context, EVIDENCE[reason])
        else:
            remaining *= 1 - EVIDENCE[reason]
    remaining *= 1 - context
    similarity = name_similarity(a, b)
    weight = NAME_WEIGHT[a.organisation and b.organisation]
    score = weight * similarity + (1 - weight) * (1 - remaining)
    if similarity >= 0.999 and a.name != b.name:
        reasons.insert(0, "same name, words in another order")
    elif similarity >= 0.999:
        reasons.insert(0, "same name")
    else:
        reasons.insert(0, f"names {similarity:.0%} similar")
    return round(score, 4), tuple(reasons)


def name_gate(min_score: float, organisation: bool, evidence: float = 1.0) -> float:
    """The least name similarity with which a pair sharing ``evidence`` reaches ``min_score``.

    Above 1 when no name can (the block then compares nothing).
    """
    weight = NAME_WEIGHT[organisation]
    return max(0.0, (min_score - (1 - weight) * evidence) / weight)


Pair = tuple[int, int]


def _exact_pairs(records: list[MatchRecord], key: Callable[[MatchRecord], str | None]) -> set[Pair]:
    keyed = sorted((k, r.id) for r in records if (k := key(r)) is not None)
    pairs: set[Pair] = set()
    for _, group in groupby(keyed, key=lambda item: item[0]):
        ids = [cid for _, cid in group]
        if len(ids) < 2:
            continue
        span = len(ids) if len(ids) <= MAX_BLOCK else WINDOW + 1
        for i, first in enumerate(ids):
            for second in ids[i + 1 : i + span]:
                pairs.add((first, second))
    return pairs


def _neighbour_pairs(
    records: list[MatchRecord],
    block: Callable[[MatchRecord], str | None],
    min_score: float,
    evidence: float,
) -> set[Pair]:
    """Pairs of one block's members adjacent by name (sorted words, then reversed), alike.

    A pair is kept when its names are similar enough to reach ``min_score``
    with ``evidence`` (what the block's members share); a pair that shares
    more (a phone, an email) is proposed by an exact block anyway.
    """
    pairs: set[Pair] = set()
    gates = {o: name_gate(min_score, o, evidence) for o in (False, True)}
    members = [
        (k, name_key(r.name), r)
        for r in records
        if gates[r.organisation] <= 1 and (k := block(r)) is not None
    ]
    for reverse in (False, True):
        members.sort(key=lambda item: (item[0], item[1][::-1] if reverse else item[1]))
        for i, (k, _, first) in enumerate(members):
            for k2, _, second in members[i + 1 : i + 1 + WINDOW]:
                if k2 != k:
                    break
                both = first.organisation and second.organisation
                gate = gates[both]
                if both:
                    alike = name_similarity(first, second) >= gate
                else:
                    alike = bool(
                        fuzz.token_sort_ratio(first.name, second.name, score_cutoff=gate * 100)
                    )
                if alike:
                    low, high = sorted((first.id, second.id))
                    pairs.add((low, high))
    return pairs


def _org_prefix(record: MatchRecord) -> str | None:
    if not record.organisation:
        return None
    return record.name[:2] if not record.name.isascii() else record.name.split(" ", 1)[0]


def candidate_pairs(records: list[MatchRecord], min_score: float) -> Iterator[Pair]:
    """Every pair a block proposes, each once, lower id first."""
    pairs: set[Pair] = set()
    for key in (lambda r: r.phone, lambda r: r.email, lambda r: r.local_part):
        pairs |= _exact_pairs(records, key)
    if min_score <= NAME_WEIGHT[False]:  # a person's name alone can reach the least score
        pairs |= _exact_pairs(records, lambda r: None if r.organisation else name_key(r.name))
    company, city = EVIDENCE["same company"], EVIDENCE["same city"]
    pairs |= _neighbour_pairs(records, lambda r: r.company, min_score, company)
    pairs |= _neighbour_pairs(records, lambda r: r.city, min_score, city)
    pairs |= _neighbour_pairs(records, _org_prefix, min_score, city)
    yield from sorted(pairs)


def scored_pairs(
    records: Iterable[MatchRecord], min_score: float
) -> list[tuple[float, Pair, tuple[str, ...]]]:
    """The candidate pairs scoring at least ``min_score``, best first (then by ids)."""
    listed = list(records)
    by_id = {r.id: r for r in listed}
    found = []
    for first, second in candidate_pairs(listed, min_score):
        score, reasons = score_pair(by_id[first], by_id[second])
        if score >= min_score:
            found.append((score, (first, second), reasons))
    found.sort(key=lambda item: (-item[0], item[1]))
    return found
