"""Probable duplicates: precision, recall and time on generated customers with known duplicates.

    .venv/bin/python benchmarks/bench_duplicates.py [--sizes 100000,1000000] [--share 0.02]
        [--min-score 0.85] [--budget 300]

For each size, a fresh SQLite database gets that many customers through
``crm.customers.create_many`` (validation and identity keys as in
production): people with names drawn from small pools (so unrelated
customers share names, companies and cities, the hard negatives) and
organisations with Chinese or Latin legal forms. A share of them
(``--share``) are injected duplicates of an earlier customer, one kind each:

* transposed name (``Wei Li`` / ``Li Wei``), same company and city;
* one-letter typo in the name, same company;
* email variant (dots, ``+tag``, case of a gmail address), same name;
* the same email local part at another domain, same name;
* an organisation written with another legal form or a branch suffix, same city.

(The same phone in two forms, and organisation names equal after the legal
forms are stripped, are refused by the unique keys, so they are not
injected.) ``crm.customers.duplicates(min_score)`` is timed; precision is the
share of listed pairs that were injected, recall the share of injected pairs
listed. A size runs only if the previous one suggests it ends within
``--budget`` seconds (ten times the previous size's time per customer).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FIRST = [
    "Wei", "Min", "Jing", "Li", "Fang", "Lei", "Yan", "Jun", "Hui", "Ping", "Ada", "Alan",
    "Grace", "John", "Mary", "Peter", "Anna", "Paul", "Maria", "David", "Sarah", "James",
    "Linda", "Robert", "Emma", "Lukas", "Sofia", "Mateo", "Chloe", "Omar", "Aisha", "Ivan",
]  # fmt: skip
LAST = [
    "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun",
    "Smith", "Johnson", "Brown", "Garcia", "Miller", "Davis", "Martin", "Lopez", "Wilson",
    "Moore", "Taylor", "Thomas", "Lee", "Walker", "Hall", "Young", "King", "Wright", "Scott",
]  # fmt: skip
CITIES = ["Springfield", "Shelbyville", "Riverton", "Lakeside", "Fairview", "Georgetown"]
CN_CITIES = ["北京市", "上海市", "广东省深圳市", "广东省广州市", "浙江省杭州市", "四川省成都市"]
WORDS = ["华为", "阿里", "腾讯", "美的", "格力", "海尔", "联想", "小米", "百度", "京东", "比亚迪"]
TRADES = ["技术", "科技", "电子", "软件", "网络", "贸易", "物流", "医药", "能源", "材料"]
LATIN = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka", "Tyrell"]
LATIN_TRADES = ["Technologies", "Systems", "Logistics", "Foods", "Motors", "Labs", "Energy"]
CN_FORMS = ["有限公司", "股份有限公司", "有限责任公司", "集团"]
LATIN_FORMS = ["Inc", "Ltd", "GmbH", "Co., Ltd.", "LLC"]
DOMAINS = ["gmail.com", "work.example", "mail.example", "corp.example"]


def _typo(rng: random.Random, name: str) -> str:
    """One letter replaced, inserted or dropped inside a word (never the first letter)."""
    positions = [i for i, ch in enumerate(name) if ch.isalpha() and i > 0 and name[i - 1] != " "]
    i = rng.choice(positions)
    letter = rng.choice([c for c in "aeiounrst" if c != name[i].lower()])
    kind = rng.randrange(3)
    if kind == 0:
        return name[:i] + letter + name[i + 1 :]
    if kind == 1:
        return name[:i] + letter + name[i:]
    return name[:i] + name[i + 1 :]


def _gmail_variant(rng: random.Random, email: str) -> str:
    local, domain = email.split("@")
    variant = local.replace(".", "") if "." in local else local[:2] + "." + local[2:]
    if rng.random() < 0.5:
        variant += "+crm"
    return (variant.upper() if rng.random() < 0.3 else variant) + "@" + domain


class Generator:
    """Customers with known injected duplicates: ``rows`` in order and ``truth`` (row pairs)."""

    def __init__(self, n: int, share: float, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.n = n
        self.share = share
        self.rows: list[dict[str, Any]] = []
        #: (original row, duplicate row) -> the kind of duplicate injected.
        self.truth: dict[tuple[int, int], str] = {}
        self.companies = [
            f"{self.rng.choice(LATIN)} {self.rng.choice(LATIN_TRADES)} {i}"
            for i in range(max(1, n // 40))
        ]

    def person(self, i: int) -> dict[str, Any]:
        rng = self.rng
        first = rng.choice(FIRST) + (rng.choice(FIRST).lower() if rng.random() < 0.8 else "")
        last = rng.choice(LAST)
        domain = rng.choice(DOMAINS)
        city = rng.choice(CITIES)
        return {
            "name": f"{first} {last}",
            "email": f"{first.lower()}.{last.lower()}{i}@{domain}",
            "address": f"{rng.randint(1, 999)} Main St, {city}",
            "company_name": rng.choice(self.companies),
        }

    def organisation(self, i: int) -> dict[str, Any]:
        rng = self.rng
        if rng.random() < 0.5:
            stem = f"{rng.choice(WORDS)}{rng.choice(TRADES)}{i}号"
            name = stem + rng.choice(CN_FORMS)
            address = rng.choice(CN_CITIES) + "某区某路"
        else:
            stem = f"{rng.choice(LATIN)} {rng.choice(LATIN_TRADES)} {i}"
            name = f"{stem} {rng.choice(LATIN_FORMS)}"
            address = f"{rng.randint(1, 99)} Harbour Rd, {rng.choice(CITIES)}"
        return {"name": name, "kind": "organization", "address": address, "stem": stem}

    def duplicate(self, base: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """A duplicate of ``base`` and its kind."""
        rng = self.rng
        if base.get("kind") == "organization":
            stem = base["stem"]
            if stem.isascii() and rng.random() < 0.5:
                kind, name = "organisation typo", _typo(rng, stem)
            elif stem.isascii():
                kind, name = "organisation + word", f"{stem} Holdings"
            else:
                kind, name = "organisation + word", stem + rng.choice(["(北京)", "科技"])
            return kind, {"name": name, "kind": "organization", "address": base["address"]}
        kind = rng.randrange(4)
        first, last = base["name"].split(" ")
        local, domain = base["email"].split("@")
        if kind == 0:
            city = base["address"].split(", ")[1]
            return "transposed name", {
                "name": f"{last} {first}",
                "address": f"{rng.randint(1, 999)} Other Rd, {city}",
                "company_name": base["company_name"],
            }
        if kind == 1:
            typo = {"name": _typo(rng, base["name"]), "company_name": base["company_name"]}
            return "name typo", typo
        if kind == 2:
            email = _gmail_variant(rng, f"{local}@gmail.com")
            base["email"] = f"{local}@gmail.com"
            return "gmail variant", {"name": base["name"], "email": email}
        other = next(d for d in DOMAINS if d != domain)
        return "other domain", {"name": base["name"], "email": f"{local}@{other}"}

    def generate(self) -> None:
        """Fill ``rows`` and ``truth``; a duplicate always comes after its original."""
        dup_count = int(self.n * self.share)
        originals = self.n - dup_count
        for i in range(originals):
            self.rows.append(self.organisation(i) if self.rng.random() < 0.1 else self.person(i))
        used: set[int] = set()
        for j in range(dup_count):
            base_index = self.rng.randrange(originals)
            while base_index in used:
                base_index = self.rng.randrange(originals)
            used.add(base_index)
            kind, row = self.duplicate(self.rows[base_index])
            self.rows.append(row)
            self.truth[(base_index, originals + j)] = kind

    def api_rows(self) -> Iterator[dict[str, Any]]:
        for row in self.rows:
            yield {k: v for k, v in row.items() if k != "stem"}


def run(n: int, share: float, min_score: float) -> float:
    from crmcore import CRM

    generator = Generator(n, share)
    generator.generate()
    with tempfile.TemporaryDirectory() as directory:
        crm = CRM.open(f"sqlite:///{Path(directory) / 'dup.db'}", discover=False, upgrade=True)
        start = time.perf_counter()
        created = crm.customers.create_many(generator.api_rows(), batch_size=5000)
        ingest = time.perf_counter() - start
        ids = [c.id for c in created]
        truth: dict[tuple[int, int], str] = {}
        for (a, b), kind in generator.truth.items():
            first, second = sorted((ids[a], ids[b]))
            assert first is not None and second is not None
            truth[(first, second)] = kind
        start = time.perf_counter()
        pairs = crm.customers.duplicates(min_score=min_score, limit=1_000_000)
        elapsed = time.perf_counter() - start
        crm.close()
    listed = {p.customer_ids for p in pairs}
    hits = len(listed & truth.keys())
    precision = hits / len(listed) if listed else 1.0
    recall = hits / len(truth) if truth else 1.0
    print(
        f"{n:>9,} customers  {len(truth):>7,} injected  {len(listed):>7,} listed  "
        f"precision {precision:.3f}  recall {recall:.3f}  "
        f"duplicates {elapsed:6.1f} s  (ingest {ingest:6.1f} s)",
        flush=True,
    )
    kinds = sorted(set(truth.values()))
    by_kind = []
    for kind in kinds:
        wanted = [p for p, k in truth.items() if k == kind]
        found = sum(1 for p in wanted if p in listed)
        by_kind.append(f"{kind} {found / len(wanted):.2f}")
    print(f"{'':>11}recall by kind: {', '.join(by_kind)}", flush=True)
    return (elapsed + ingest) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--share", type=float, default=0.02, help="share of injected duplicates")
    parser.add_argument("--min-score", type=float, default=0.85)
    parser.add_argument("--budget", type=float, default=300, help="seconds a size may take")
    args = parser.parse_args()
    print(f"crmcore probable duplicates (SQLite, min score {args.min_score})")
    per_customer = 0.0
    for size in (int(s) for s in args.sizes.split(",")):
        if per_customer and per_customer * size > args.budget:
            print(
                f"{size:>9,} customers  skipped: about {per_customer * size:.0f} s expected, "
                f"over --budget {args.budget:g}"
            )
            continue
        per_customer = run(size, args.share, args.min_score)


if __name__ == "__main__":
    main()
