"""Segment rules: a JSON rule language, validated by a JSON Schema and compiled to one SQL query.

A rule is ``{"all": [rule, ...]}``, ``{"any": [rule, ...]}``, ``{"not": rule}`` or a
condition ``{"field": F, "op": OP, "value": V}``; ``schemas/rule.schema.json`` is
its JSON Schema. Fields:

* ``customer.<column>``: one of :data:`CUSTOMER_FIELDS`;
  ``customer.email`` compares normalised addresses with every stored form of the
  identity key (``crm.customers.stored_forms``), so it works with encryption on;
* ``tag``: the customer's tags (``eq``: has the tag, ``ne``: has not, ``in``: has one of);
* ``attributes.<key>``: a custom field, compared as a number, string or boolean
  according to the type of ``value``;
* ``rfm.<name>``: ``r``, ``f``, ``m``, ``fm``, ``recency_days``, ``frequency``,
  ``monetary`` (in currency units), ``segment`` (RFM as of the refresh, configured window);
* ``tier``: the value tier (``high``, ``medium``, ``low``; configured basis);
* ``fact.<name>``: a fact a plugin offers through ``segmentation_fact_queries``.

Operators: ``eq ne lt le gt ge in not_in exists not_exists``. A condition on a
missing value (unscored customer, absent attribute) is false, so ``not`` of it is true.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from sqlalchemy import Select, and_, exists, false, literal, not_, or_, select, true
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause
from sqlalchemy.sql.visitors import replacement_traverse

from crmcore import CRM, ValidationError
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore.storage.attributes import attribute
from crmcore_segmentation.per_customer import merge_per_customer
from crmcore_segmentation.purchases import SCALE
from crmcore_segmentation.rfm import rfm_query
from crmcore_segmentation.tiers import tier_query

#: Customer columns a rule may test.
CUSTOMER_FIELDS = (
    "id",
    "kind",
    "name",
    "email",
    "stage",
    "source_channel",
    "owner",
    "gender",
    "industry",
    "size",
    "company_name",
    "birth_date",
    "created_at",
    "updated_at",
)
#: RFM values a rule may test.
RFM_FIELDS = ("r", "f", "m", "fm", "recency_days", "frequency", "monetary", "segment")
OPERATORS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "exists", "not_exists")


@cache
def rule_schema() -> Mapping[str, Any]:
    """The JSON Schema of a rule (``crmcore_segmentation/schemas/rule.schema.json``)."""
    text = resources.files("crmcore_segmentation").joinpath("schemas/rule.schema.json")
    schema: Mapping[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return schema


def _path(parts: list[str | int]) -> str:
    return ".".join(["rule", *map(str, parts)])


def validate_rule(rule: Any, facts: Mapping[str, Any] | None = None) -> None:
    """Check ``rule`` against the schema and the known fields.

    Raises ValidationError naming the path of the first problem
    (``rule.all.1.field: unknown field 'rfm.x'``).
    """
    validator = jsonschema.Draft202012Validator(dict(rule_schema()))
    errors = sorted(validator.iter_errors(rule), key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        best = jsonschema.exceptions.best_match([error])
        where = _path(list(best.absolute_path))
        raise ValidationError(f"{where}: {best.message}", field="rule", value=rule)
    _check_fields(rule, [], facts or {})


def _check_fields(rule: Mapping[str, Any], at: list[str | int], facts: Mapping[str, Any]) -> None:
    for combinator in ("all", "any"):
        if combinator in rule:
            for index, child in enumerate(rule[combinator]):
                _check_fields(child, [*at, combinator, index], facts)
            return
    if "not" in rule:
        _check_fields(rule["not"], [*at, "not"], facts)
        return
    name: str = rule["field"]
    prefix, _, rest = name.partition(".")
    known = (
        (prefix == "customer" and rest in CUSTOMER_FIELDS)
        or (prefix == "rfm" and rest in RFM_FIELDS)
        or name in ("tag", "tier")
        or prefix == "attributes"
        or (prefix == "fact" and rest in facts)
    )
    if not known:
        raise ValidationError(
            f"{_path([*at, 'field'])}: unknown field {name!r}", field="rule", value=name
        )


class _Compiler:
    """Turns a validated rule into a WHERE clause over customers and the joins it needs."""

    def __init__(self, crm: CRM, facts: Mapping[str, Any], as_of: datetime | None) -> None:
        self.crm = crm
        self.facts = facts
        self.as_of = as_of
        self.customers = crm.metadata.tables["crm_customers"]
        self.joins: dict[str, FromClause] = {}

    def joined(self, name: str, build: Callable[[], FromClause]) -> FromClause:
        if name not in self.joins:
            self.joins[name] = build()
        return self.joins[name]

    def compile(self, rule: Mapping[str, Any]) -> ColumnElement[bool]:
        if "all" in rule:
            return and_(true(), *[self.compile(child) for child in rule["all"]])
        if "any" in rule:
            return or_(false(), *[self.compile(child) for child in rule["any"]])
        if "not" in rule:
            return not_(self.compile(rule["not"]))
        return self.condition(rule["field"], rule["op"], rule.get("value"))

    def condition(self, name: str, op: str, value: Any) -> ColumnElement[bool]:
        if name == "tag":
            return self.tag(op, value)
        if name == "customer.email":
            return self.email(op, value)
        column = self.column(name, value)
        if name == "rfm.monetary" and value is not None:
            value = _scaled(value)
        elif name.startswith("customer.") and value is not None:
            value = _customer_value(name, value)
        return compare(column, op, value)

    def tag(self, op: str, value: Any) -> ColumnElement[bool]:
        tags = self.crm.metadata.tables["crm_customer_tags"]
        owned = tags.c.customer_id == self.customers.c.id
        if op in ("exists", "not_exists"):
            has_any = exists(select(tags.c.tag).where(owned))
            return has_any if op == "exists" else not_(has_any)
        wanted = value if isinstance(value, list) else [value]
        if op not in ("eq", "ne", "in", "not_in"):
            raise ValidationError(f"rule: operator {op!r} does not apply to tags", field="rule")
        has = exists(select(tags.c.tag).where(owned, tags.c.tag.in_([str(v) for v in wanted])))
        return has if op in ("eq", "in") else not_(has)

    def email(self, op: str, value: Any) -> ColumnElement[bool]:
        """``customer.email`` through its identity key, so it matches with encryption on too.

        ``eq``/``ne``/``in``/``not_in`` compare normalised addresses (case and
        surrounding spaces ignored) with every stored form of the key; ordering
        operators need the plaintext column, so encryption refuses them.
        """
        key = self.customers.c.email_norm
        if op in ("exists", "not_exists"):
            return compare(key, op, value)
        if op not in ("eq", "ne", "in", "not_in"):
            if self.crm.cipher is not None:
                raise ValidationError(
                    f"rule: customer.email: operator {op!r} cannot compare encrypted emails "
                    "(use eq, ne, in, not_in, exists or not_exists)",
                    field="rule",
                )
            return compare(self.customers.c.email, op, value)
        wanted = value if isinstance(value, list) else [value]
        try:
            forms = [f for v in wanted for f in self.crm.customers.stored_forms("email", v)]
        except ValidationError as exc:
            raise ValidationError(f"rule: customer.{exc}", field="rule") from None
        matched = and_(key.is_not(None), key.in_(forms))
        return matched if op in ("eq", "in") else and_(key.is_not(None), not_(key.in_(forms)))

    def column(self, name: str, value: Any) -> ColumnElement[Any]:
        prefix, _, rest = name.partition(".")
        if prefix == "customer":
            return self.customers.c[rest]
        if prefix == "attributes":
            element = attribute(self.customers.c.attributes, rest)
            sample = value[0] if isinstance(value, list) else value
            typed: ColumnElement[Any]
            if isinstance(sample, bool):
                typed = element.as_boolean()
            elif isinstance(sample, int | float):
                typed = element.as_float()
            else:
                typed = element.as_string()
            return typed
        if prefix == "rfm":
            rfm = self.joined(
                "rfm", lambda: rfm_query(self.crm, as_of=self.as_of).subquery("rule_rfm")
            )
            return rfm.c[rest]
        if name == "tier":
            tiers = self.joined(
                "tier", lambda: tier_query(self.crm, as_of=self.as_of).subquery("rule_tier")
            )
            return tiers.c.tier
        fact = self.joined(
            f"fact:{rest}", lambda: self.facts[rest].subquery(f"fact_{len(self.joins)}")
        )
        return fact.c.value

    def query(self, rule: Mapping[str, Any]) -> Select[Any]:
        where = self.compile(rule)
        ids = select(self.customers.c.id.label("customer_id"))
        if not self.joins:
            return ids.where(where)
        # The joined values (RFM, tier, facts) side by side per customer by a sort, not a
        # left join SQLite would re-scan per customer; the conditions then read the merge.
        labels: dict[int, str] = {}
        others = []
        for index, joined in enumerate(self.joins.values()):
            values = []
            for column in joined.c:
                if column.key != "customer_id":
                    labels[id(column)] = f"j{index}_{column.key}"
                    values.append(column.label(labels[id(column)]))
            others.append(select(joined.c.customer_id, *values))
        merged = merge_per_customer(ids, others, "rule_values")

        def read_merged(element: Any, **_: Any) -> Any:
            label = labels.get(id(element))
            return None if label is None else merged.c[label]

        adapted = replacement_traverse(where, {}, read_merged)
        source = self.customers.join(merged, merged.c.customer_id == self.customers.c.id)
        return ids.select_from(source).where(adapted)


def _scaled(value: Any) -> Any:
    if isinstance(value, list):
        return [_scaled(v) for v in value]
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return value
    return int(Decimal(str(value)) * SCALE)


def _customer_value(name: str, value: Any) -> Any:
    if isinstance(value, list):
        return [_customer_value(name, v) for v in value]
    field = name.partition(".")[2]
    try:
        if field in ("created_at", "updated_at") and isinstance(value, str):
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                raise ValueError("must be timezone-aware")
            return moment
        if field == "birth_date" and isinstance(value, str):
            return date.fromisoformat(value)
    except ValueError as exc:
        raise ValidationError(f"rule: {name}: {value!r}: {exc}", field="rule") from None
    return value


def compare(column: ColumnElement[Any], op: str, value: Any) -> ColumnElement[bool]:
    """``column OP value``, false when the column is NULL (except for ``not_exists``)."""
    if op == "exists":
        return column.is_not(None)
    if op == "not_exists":
        return column.is_(None)
    present = column.is_not(None)
    if op == "in":
        return and_(present, column.in_(value))
    if op == "not_in":
        return and_(present, column.not_in(value))
    bound = literal(value, column.type)
    operations: dict[str, Callable[[], ColumnElement[bool]]] = {
        "eq": lambda: column == bound,
        "ne": lambda: column != bound,
        "lt": lambda: column < bound,
        "le": lambda: column <= bound,
        "gt": lambda: column > bound,
        "ge": lambda: column >= bound,
    }
    return and_(present, operations[op]())


@requires(Action.READ, scoped=True)  # plugins' fact queries: SQL, no data
def fact_queries(crm: CRM) -> dict[str, Any]:
    """Every fact offered by plugins through ``segmentation_fact_queries``, by name."""
    facts: dict[str, Any] = {}
    for answer in crm.call_hook("segmentation_fact_queries", crm=crm):
        facts.update(answer or {})
    return facts


@requires(Action.READ, scoped=True)  # builds SQL; the caller scopes what it reads
def compile_rule(
    crm: CRM, rule: Mapping[str, Any], *, as_of: datetime | None = None
) -> Select[Any]:
    """Validate ``rule`` and compile it to ``SELECT customer_id FROM ... WHERE ...``.

    Raises ValidationError for a rule that breaks the schema or names an unknown field.
    """
    facts = fact_queries(crm)
    validate_rule(rule, facts)
    return _Compiler(crm, facts, as_of).query(rule)


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
