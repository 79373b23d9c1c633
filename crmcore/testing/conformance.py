"""The access conformance kit: prove that a plugin's services leak nothing (``crmcore.testing``).

Give :func:`run_conformance` a CRM (the trusted view), the plugin's cases
(one :class:`Case` per public service function: how to call it about a
customer) and, optionally, the functions that must all be covered. The kit
creates two customers:

* ``visible``: owned by the agent ``kit-owner`` and granted to ``kit-granted``;
* ``hidden``: owned by the agent ``kit-stranger``.

Each case is called about ``visible`` by an admin, a manager, the owning
agent, the granted agent and the foreign agent (``kit-stranger``). A role the
case does not allow must get an AccessDeniedError or a result that names
nothing of ``visible``, and the database must be unchanged after its call;
an allowed role must not be refused and must see nothing of a customer it
may not read (``hidden`` for the two agents). The :class:`Matrix` holds one
row per (function, role) and :meth:`Matrix.assert_clean` fails the test with
every bad cell.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from attrs import field, frozen
from sqlalchemy import inspect as inspect_db
from sqlalchemy import select

from crmcore.access import AccessDeniedError, Principal, Role
from crmcore.errors import CRMError

if TYPE_CHECKING:
    from crmcore.app import CRM
    from crmcore.unit_of_work import UnitOfWork

#: The principals every case is run as, by the role name shown in the matrix.
PRINCIPALS: Mapping[str, Principal] = {
    "admin": Principal("kit-admin", Role.ADMIN),
    "manager": Principal("kit-manager", Role.MANAGER),
    "owner": Principal("kit-owner", Role.AGENT),
    "granted": Principal("kit-granted", Role.AGENT),
    "foreign": Principal("kit-stranger", Role.AGENT),
}
#: Roles a case allows by default: everyone who may read the ``visible`` customer.
SCOPED = frozenset({"admin", "manager", "owner", "granted"})
#: Roles allowed an aggregate over every customer (agents are refused).
EVERYONE_ONLY = frozenset({"admin", "manager"})
#: Roles allowed what only an administrator may do.
ADMIN_ONLY = frozenset({"admin"})

_MARK = "kitmark"
_LIMIT = 10_000  # items read from an iterator a case returns


@frozen
class Subjects:
    """The customers of a run and whatever the plugin's ``prepare`` returned for each."""

    visible: int
    hidden: int
    data: Mapping[str, Any] = field(factory=dict)
    #: What the case's ``setup`` returned for this call (e.g. a fresh customer to delete).
    fresh: Any = None


@frozen
class Case:
    """How to call one service function about ``subjects.visible``.

    ``call(crm_view, subjects)`` runs the function on a user's view.
    ``allowed`` are the roles that may do it (:data:`SCOPED`,
    :data:`EVERYONE_ONLY`, :data:`ADMIN_ONLY` or any set of role names).
    ``reveals(result, customer_id, subjects)`` may add a plugin-specific test
    of whether a result shows something of a customer (the kit already looks
    for customer ids under ``customer_id``/``customer_ids`` keys and
    attributes, Customer objects and the customers' names and emails).
    """

    function: str
    call: Callable[[CRM, Subjects], Any]
    allowed: frozenset[str] = SCOPED
    reveals: Callable[[Any, int, Subjects], bool] | None = None
    #: Run on the trusted view before each call (outside the write check); its result
    #: is ``subjects.fresh``. For destructive cases: ``setup=fresh_customer``.
    setup: Callable[[CRM, Subjects], Any] | None = None


@frozen
class Cell:
    """One (plugin, function, role) outcome; ``ok`` False is a failure."""

    plugin: str
    function: str
    role: str
    expected: str
    outcome: str
    ok: bool


@frozen
class Matrix:
    """Every cell of one run."""

    plugin: str
    backend: str
    cells: tuple[Cell, ...]

    @property
    def failures(self) -> list[Cell]:
        """The cells that leaked, wrote, or refused an allowed role."""
        return [c for c in self.cells if not c.ok]

    def format(self) -> str:
        """The matrix as a plain-text table (one line per function, one column per role)."""
        roles = list(PRINCIPALS)
        functions = list(dict.fromkeys(c.function for c in self.cells))
        outcome = {(c.function, c.role): c for c in self.cells}
        width = max([len(f) for f in functions] + [8])
        lines = [
            f"access matrix: {self.plugin} on {self.backend} "
            f"({len(functions)} functions, {len(self.cells)} cells, "
            f"{len(self.failures)} failures)",
            "function".ljust(width) + " | " + " | ".join(r.ljust(14) for r in roles),
        ]
        for function in functions:
            shown = []
            for role in roles:
                cell = outcome.get((function, role))
                text = "" if cell is None else cell.outcome + ("" if cell.ok else " !!")
                shown.append(text.ljust(14))
            lines.append(function.ljust(width) + " | " + " | ".join(shown))
        return "\n".join(lines)

    def assert_clean(self) -> None:
        """Raise AssertionError listing every failed cell."""
        if self.failures:
            listed = "\n".join(
                f"  {c.function} as {c.role}: {c.outcome} (expected {c.expected})"
                for c in self.failures
            )
            raise AssertionError(f"access conformance of {self.plugin} failed:\n{listed}")


def _digest(crm: CRM) -> str:
    """A digest of every row of every table: equal before and after means nothing was written."""
    hasher = hashlib.sha256()
    with crm.engine.connect() as connection:
        # The metadata is shared by every CRM of the process: keep the tables this one has.
        present = set(inspect_db(connection).get_table_names())
        for table in crm.metadata.sorted_tables:
            if table.name not in present:
                continue
            rows = connection.execute(select(table)).all()
            for row in sorted(repr(tuple(r)) for r in rows):
                hasher.update(row.encode())
            hasher.update(table.name.encode())
    return hasher.hexdigest()


def _materialise(value: Any) -> Any:
    if isinstance(value, Iterator) or inspect.isgenerator(value):
        items = []
        for item in value:
            items.append(item)
            if len(items) >= _LIMIT:
                break
        return items
    return value


def _mentions(value: Any, customer_id: int, texts: Sequence[str], depth: int = 0) -> bool:
    """Whether ``value`` names the customer: its id under a customer key, or its texts."""
    from crmcore.model.entities import Customer

    if depth > 12:
        return False
    if isinstance(value, Customer):
        return value.id == customer_id
    if isinstance(value, str):
        return any(t in value for t in texts)
    if isinstance(value, Mapping):
        for key, item in value.items():
            listed = isinstance(item, list | tuple | set | frozenset) and customer_id in item
            if key in ("customer_id", "customer_ids") and (item == customer_id or listed):
                return True
            if _mentions(key, customer_id, texts, depth + 1):
                return True
            if _mentions(item, customer_id, texts, depth + 1):
                return True
        return False
    if attrs.has(type(value)):
        return _mentions(attrs.asdict(value, recurse=False), customer_id, texts, depth + 1)
    if isinstance(value, list | tuple | set | frozenset):
        return any(_mentions(v, customer_id, texts, depth + 1) for v in value)
    items = getattr(value, "items", None)
    if isinstance(items, list | tuple):  # a Page
        return _mentions(list(items), customer_id, texts, depth + 1)
    return False


def _texts(customer_id: int) -> list[str]:
    return [f"{_MARK}-{customer_id}-name", f"{_MARK}-{customer_id}@kit.example"]


def prepare_customers(crm: CRM) -> tuple[int, int]:
    """Create the ``visible`` and ``hidden`` customers (trusted view); return their ids."""
    first, second = crm.customers.create_many(
        [
            {"name": "kit visible", "owner": PRINCIPALS["owner"].user},
            {"name": "kit hidden", "owner": PRINCIPALS["foreign"].user},
        ]
    )
    assert first.id is not None and second.id is not None
    for customer_id in (first.id, second.id):
        name, email = _texts(customer_id)
        crm.customers.update(customer_id, {"name": name, "email": email})
    crm.access.grant(first.id, PRINCIPALS["granted"].user)
    return first.id, second.id


def _hidden_from(role: str, subjects: Subjects) -> list[int]:
    if role in ("admin", "manager"):
        return []
    if role == "foreign":
        return [subjects.visible]
    return [subjects.hidden]


def fresh_customer(crm: CRM, subjects: Subjects) -> int:
    """A ``setup`` for destructive cases: a new customer owned and granted like ``visible``."""
    created = crm.customers.create({"name": "kit fresh", "owner": PRINCIPALS["owner"].user})
    assert created.id is not None
    crm.access.grant(created.id, PRINCIPALS["granted"].user)
    return created.id


def in_unit_of_work(
    call: Callable[[UnitOfWork, Subjects], Any],
) -> Callable[[CRM, Subjects], Any]:
    """A case's ``call`` for a function that takes ``ctx``: run it in a fresh unit of work."""

    def run(crm: CRM, subjects: Subjects) -> Any:
        with crm.unit_of_work() as uow:
            return call(uow, subjects)

    return run


def _names(message: str, customer_id: int) -> bool:
    """Whether an error names the customer (its id or name; an email may be the caller's own)."""
    named = re.search(rf"\bcustomer {customer_id}\b", message) is not None
    return named or _texts(customer_id)[0] in message


def _run_cell(crm: CRM, plugin: str, case: Case, role: str, subjects: Subjects) -> Cell:
    allowed = role in case.allowed
    expected = "allowed" if allowed else "denied or nothing foreign"
    view = crm.as_user(PRINCIPALS[role])
    if case.setup is not None:
        subjects = attrs.evolve(subjects, fresh=case.setup(crm, subjects))
    hidden = _hidden_from(role, subjects)
    if subjects.fresh is not None and role == "foreign":
        hidden = [*hidden, subjects.fresh] if isinstance(subjects.fresh, int) else hidden
    before = None if allowed else _digest(crm)
    try:
        result = _materialise(case.call(view, subjects))
    except AccessDeniedError:
        return Cell(plugin, case.function, role, expected, "denied", not allowed)
    except CRMError as exc:
        name = type(exc).__name__
        if allowed:
            return Cell(plugin, case.function, role, expected, f"refused: {name}", True)
        if any(_names(str(exc), cid) for cid in hidden):
            return Cell(plugin, case.function, role, expected, f"LEAK in {name}", False)
        if before is not None and _digest(crm) != before:
            return Cell(plugin, case.function, role, expected, "UNAUTHORISED WRITE", False)
        return Cell(plugin, case.function, role, expected, f"refused: {name}", True)
    for customer_id in hidden:
        leaked = _mentions(result, customer_id, _texts(customer_id))
        if not leaked and case.reveals is not None:
            leaked = case.reveals(result, customer_id, subjects)
        if leaked:
            return Cell(plugin, case.function, role, expected, "LEAK", False)
    if before is not None and _digest(crm) != before:
        return Cell(plugin, case.function, role, expected, "UNAUTHORISED WRITE", False)
    outcome = "allowed" if allowed else "nothing foreign"
    return Cell(plugin, case.function, role, expected, outcome, True)


def run_conformance(
    crm: CRM,
    plugin: str,
    cases: Iterable[Case],
    *,
    prepare: Callable[[CRM, int, int], Mapping[str, Any]] | None = None,
    functions: Iterable[str] = (),
    exempt: Mapping[str, str] | None = None,
    record: bool = True,
) -> Matrix:
    """Run every case as each role of :data:`PRINCIPALS` and return the matrix.

    ``crm`` is a trusted CRM on an initialised, empty database with the plugin
    enabled. ``prepare(crm, visible, hidden)`` creates the plugin's data for
    both customers (trusted view) and returns what the cases need, as
    ``subjects.data``. ``functions`` lists the names that must each have a
    case (e.g. ``crmcore.scoping.service_functions(...)``): one without a
    case is a failed ``not covered`` row, unless ``exempt`` gives the reason
    (shown in the matrix), e.g. a function only core's hooks call.
    ``record=False`` leaves the matrix out of :func:`recorded_matrices` (the
    report the pytest plugin prints).
    """
    visible, hidden = prepare_customers(crm)
    data = prepare(crm, visible, hidden) if prepare is not None else {}
    subjects = Subjects(visible, hidden, data)
    cells: list[Cell] = []
    cases = list(cases)
    for case in cases:
        for role in PRINCIPALS:
            cells.append(_run_cell(crm, plugin, case, role, subjects))
    covered = {c.function for c in cases}
    for name in functions:
        if name in covered:
            continue
        reason = (exempt or {}).get(name)
        for role in PRINCIPALS:
            if reason is None:
                cells.append(Cell(plugin, name, role, "a case", "not covered", False))
            else:
                cells.append(Cell(plugin, name, role, "exempt", f"exempt: {reason}", True))
    matrix = Matrix(plugin, crm.engine.dialect.name, tuple(cells))
    if record:
        _RECORDED.append(matrix)
    return matrix


#: Every matrix run in this process (the pytest plugin prints them at the end).
_RECORDED: list[Matrix] = []


def recorded_matrices() -> list[Matrix]:
    """The matrices :func:`run_conformance` produced in this process, in order."""
    return list(_RECORDED)


__all__ = [
    "ADMIN_ONLY",
    "EVERYONE_ONLY",
    "PRINCIPALS",
    "SCOPED",
    "Case",
    "Cell",
    "Matrix",
    "Subjects",
    "fresh_customer",
    "in_unit_of_work",
    "prepare_customers",
    "recorded_matrices",
    "run_conformance",
]
