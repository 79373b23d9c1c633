"""The example plugin (examples/crmcore-example), exercised through core on both backends.

It is installed in the test environment (``pip install -e examples/crmcore-example``)
so discovery goes through its ``crmcore.plugins`` entry point; the same module
is also registered in code with ``discover=False``. Core's own tests use the
``crm`` fixture, which opens without discovery and never sees it.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import crmcore_example.plugin
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from crmcore_example import service
from crmcore_example.tables import touches_table
from rich.console import Console

from crmcore import (
    CRM,
    ChurnSignal,
    Config,
    ConfigError,
    Interaction,
    Period,
    PluginError,
    Stage,
    UnitOfWork,
    ValidationError,
)
from crmcore.cli import build_cli
from crmcore.hooks import hookimpl, specs
from crmcore.hooks.docgen import hook_functions
from crmcore.testing import FrozenClock

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
HOOKS = set(hook_functions(specs))

pytestmark = pytest.mark.skipif(
    not any(
        ep.name == "example" for ep in importlib.metadata.entry_points(group="crmcore.plugins")
    ),
    reason="crmcore-example is not installed: pip install -e examples/crmcore-example",
)


def open_crm(
    db_url: str,
    clock: FrozenClock,
    *,
    discover: bool = True,
    plugins: Sequence[object] = (),
    upgrade: bool = True,
    **config: Any,
) -> CRM:
    """Open with the example plugin found through its entry point (or given in ``plugins``)."""
    return CRM.open(
        Config(database_url=db_url, **config),
        discover=discover,
        plugins=plugins,
        upgrade=upgrade,
        clock=clock,
    )


@pytest.fixture(params=["entry_point", "in_code"])
def ex_crm(request: pytest.FixtureRequest, db_url: str, clock: FrozenClock) -> Iterator[CRM]:
    """A CRM with the example plugin, discovered or registered in code, on each backend."""
    if request.param == "entry_point":
        crm = open_crm(db_url, clock)
    else:
        crm = open_crm(db_url, clock, discover=False, plugins=[crmcore_example.plugin])
    try:
        yield crm
    finally:
        crm.close()


def row_of(crm: CRM, customer_id: int) -> dict[str, Any] | None:
    table = touches_table(crm.metadata)
    with crm.engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.customer_id == customer_id)).first()
    return None if row is None else dict(row._mapping)


def count(crm: CRM, table: str) -> int:
    with crm.engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def touches(crm: CRM, customer_id: int) -> int:
    row = row_of(crm, customer_id)
    assert row is not None
    return int(row["touches"])


def visit(customer_id: int, at: datetime, kind: str = "visit") -> dict[str, Any]:
    data: dict[str, Any] = {"customer_id": customer_id, "kind": kind, "occurred_at": at}
    if kind == "purchase":
        data.update(amount="10", currency="EUR")
    return data


@contextmanager
def statements_on(crm: CRM, table: str) -> Iterator[list[str]]:
    """Collect the SQL statements (an executemany counts once) that name ``table``."""
    seen: list[str] = []

    def listener(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if table in statement:
            seen.append(statement)

    sa.event.listen(crm.engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        sa.event.remove(crm.engine, "before_cursor_execute", listener)


# --- registration ------------------------------------------------------------------


def test_listed_with_version_and_every_hook(ex_crm: CRM) -> None:
    [info] = [p for p in ex_crm.plugins() if p.name == "example"]
    assert info.version == "0.1.0"
    assert set(info.hooks) == HOOKS
    assert len(HOOKS) == 24


def test_discovered_through_the_entry_point(db_url: str, clock: FrozenClock) -> None:
    with open_crm(db_url, clock) as crm:
        [info] = [p for p in crm.plugins() if p.name == "example"]
        assert info.distribution == "crmcore-example"
        assert crm.pm.get_plugin("example") is crmcore_example.plugin


def test_registering_it_twice_is_refused(db_url: str, clock: FrozenClock) -> None:
    with pytest.raises(PluginError, match="'example' is registered twice"):
        open_crm(db_url, clock, plugins=[crmcore_example.plugin])


def test_migration_branch_creates_its_table(ex_crm: CRM) -> None:
    assert sa.inspect(ex_crm.engine).has_table("example_touches")
    assert str(crmcore_example.plugin.MIGRATIONS) in ex_crm.migration_locations()
    assert ex_crm.pending_migrations() == set()
    with ex_crm.engine.connect() as conn:
        versions = set(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
    assert "example_0001" in versions


def test_register_tables_defines_the_table_once() -> None:
    metadata = sa.MetaData()
    table = touches_table(metadata)
    assert touches_table(metadata) is table
    crmcore_example.plugin.crm_register_tables(metadata)
    assert metadata.tables["example_touches"] is table
    assert set(table.c.keys()) == {"customer_id", "touches", "last_touch_at", "moves", "updates"}


def test_migration_backfills_customers_created_before_install(
    db_url: str, clock: FrozenClock
) -> None:
    with open_crm(db_url, clock, disabled_plugins=("example",)) as crm:
        assert not sa.inspect(crm.engine).has_table("example_touches")
        ann = crm.customers.create({"name": "Ann"})
        bob = crm.customers.create({"name": "Bob"})
        assert ann.id is not None and bob.id is not None
        crm.interactions.record_many(
            [visit(ann.id, T0 - timedelta(days=2)), visit(ann.id, T0 - timedelta(days=1))]
        )
    with open_crm(db_url, clock) as crm:
        ann_row = row_of(crm, ann.id)
        assert ann_row is not None
        assert ann_row["touches"] == 2
        assert ann_row["last_touch_at"] == T0 - timedelta(days=1)
        assert touches(crm, bob.id) == 0


def test_rows_missing_while_disabled_are_created_on_demand(db_url: str, clock: FrozenClock) -> None:
    with open_crm(db_url, clock):
        pass
    # Disabled after its migration ran: customers created meanwhile get no row.
    with open_crm(db_url, clock, upgrade=False, disabled_plugins=("example",)) as crm:
        cid = crm.customers.create({"name": "Ann"}).id
        assert cid is not None
    with open_crm(db_url, clock) as crm:
        assert row_of(crm, cid) is None
        crm.interactions.record(visit(cid, T0))
        assert touches(crm, cid) == 1


# --- config --------------------------------------------------------------------------


def test_config_is_validated_against_its_schema(db_url: str, clock: FrozenClock) -> None:
    with pytest.raises(ConfigError, match=r"plugins\.example\.milestone"):
        open_crm(db_url, clock, plugin_sections={"example": {"milestone": 0}})
    with pytest.raises(ConfigError, match=r"plugins\.example.*colour"):
        open_crm(db_url, clock, plugin_sections={"example": {"colour": "red"}})


def test_config_reaches_the_plugin(db_url: str, clock: FrozenClock) -> None:
    section = {"milestone": 5, "blocked_domain": "Example.Invalid"}
    with open_crm(db_url, clock, plugin_sections={"example": section}) as crm:
        assert crm.plugin_config("example") == section
        assert service.settings_of(crm) == service.Settings(5, "example.invalid")
    with open_crm(db_url, clock) as crm:
        assert service.settings_of(crm) == service.Settings(milestone=10, blocked_domain=None)


def test_disabled_plugin_is_not_registered(db_url: str, clock: FrozenClock) -> None:
    for plugins in ((), (crmcore_example.plugin,)):
        with open_crm(
            db_url, clock, plugins=plugins, disabled_plugins=("example",), upgrade=False
        ) as crm:
            assert "example" not in {p.name for p in crm.plugins()}
            assert crm.pm.is_blocked("example")
            assert str(crmcore_example.plugin.MIGRATIONS) not in crm.migration_locations()


def test_disabling_a_migrated_plugin_keeps_its_data_and_upgrades_working(
    db_url: str, clock: FrozenClock
) -> None:
    with open_crm(db_url, clock) as crm:
        cid = crm.customers.create({"name": "Ann"}).id
        assert cid is not None
        crm.interactions.record(visit(cid, T0))
    with open_crm(db_url, clock, disabled_plugins=("example",)) as crm:
        assert crm.pending_migrations() == set()
        assert sa.inspect(crm.engine).has_table("example_touches")
        crm.interactions.record(visit(cid, T0))  # not counted: the plugin is off
    with open_crm(db_url, clock) as crm:
        assert crm.pending_migrations() == set()
        assert touches(crm, cid) == 1


# --- events --------------------------------------------------------------------------


def test_created_customers_get_a_row_in_one_statement(ex_crm: CRM) -> None:
    with statements_on(ex_crm, "example_touches") as seen:
        created = ex_crm.customers.create_many([{"name": f"c{i}"} for i in range(7)])
    assert len(seen) == 1 and seen[0].lstrip().upper().startswith("INSERT")
    for customer in created:
        assert customer.id is not None
        assert row_of(ex_crm, customer.id) == {
            "customer_id": customer.id,
            "touches": 0,
            "last_touch_at": None,
            "moves": 0,
            "updates": 0,
        }


def test_updates_are_counted(ex_crm: CRM) -> None:
    cid = ex_crm.customers.create({"name": "Ann"}).id
    assert cid is not None
    ex_crm.customers.update(cid, {"phone": "+49 30 1234567"})
    ex_crm.customers.update(cid, {"owner": "li"})
    ex_crm.customers.update(cid, {"owner": "li"})  # nothing changes, no hook call
    row = row_of(ex_crm, cid)
    assert row is not None and row["updates"] == 2


def test_deleted_customers_lose_their_row(ex_crm: CRM) -> None:
    keep, gone = ex_crm.customers.create_many([{"name": "Keep"}, {"name": "Gone"}])
    assert keep.id is not None and gone.id is not None
    ex_crm.customers.delete(gone.id)
    assert row_of(ex_crm, gone.id) is None
    assert row_of(ex_crm, keep.id) is not None


def test_a_merge_adds_the_counters_up(ex_crm: CRM) -> None:
    keep, dup = ex_crm.customers.create_many([{"name": "Keep"}, {"name": "Dup"}])
    assert keep.id is not None and dup.id is not None
    ex_crm.interactions.record_many([visit(keep.id, T0), visit(dup.id, T0 + timedelta(hours=1))])
    ex_crm.interactions.record(visit(dup.id, T0 - timedelta(days=1)))
    ex_crm.customers.update(dup.id, {"owner": "li"})
    ex_crm.customers.merge(keep.id, dup.id)
    row = row_of(ex_crm, keep.id)
    assert row is not None
    assert (row["touches"], row["updates"]) == (3, 1 + 1)  # the merge updates the kept one
    assert row["last_touch_at"] == T0 + timedelta(hours=1)
    assert row_of(ex_crm, dup.id) is None


def test_interactions_add_touches_in_constant_statements(ex_crm: CRM) -> None:
    ann, bob = ex_crm.customers.create_many([{"name": "Ann"}, {"name": "Bob"}])
    assert ann.id is not None and bob.id is not None
    batch = [visit(ann.id, T0 - timedelta(hours=h)) for h in range(40)]
    batch += [visit(bob.id, T0 - timedelta(days=3, hours=h)) for h in range(10)]
    with statements_on(ex_crm, "example_touches") as seen:
        ex_crm.interactions.record_many(batch)
    assert len(seen) <= 2, seen  # one locking read, one executemany update
    assert touches(ex_crm, ann.id) == 40
    assert touches(ex_crm, bob.id) == 10
    ann_row = row_of(ex_crm, ann.id)
    assert ann_row is not None and ann_row["last_touch_at"] == T0

    # Recorded late: counts, but last_touch_at does not move back.
    ex_crm.interactions.record(visit(ann.id, T0 - timedelta(days=30)))
    ann_row = row_of(ex_crm, ann.id)
    assert ann_row is not None
    assert ann_row["touches"] == 41 and ann_row["last_touch_at"] == T0


def test_lifecycle_moves_are_counted(ex_crm: CRM) -> None:
    cid = ex_crm.customers.create({"name": "Ann"}).id
    assert cid is not None
    row = row_of(ex_crm, cid)
    assert row is not None and row["moves"] == 0  # the initial stage is no move
    ex_crm.interactions.record(visit(cid, T0, kind="purchase"))  # prospect -> new, automatic
    ex_crm.lifecycle.move(cid, Stage.ACTIVE)
    row = row_of(ex_crm, cid)
    assert row is not None and row["moves"] == 2 and row["touches"] == 1


def test_hook_failure_rolls_back_the_plugins_write_too(db_url: str, clock: FrozenClock) -> None:
    seen_inside: list[int] = []

    class FailsAfterExample:
        crm_plugin_name = "fails"

        @hookimpl(trylast=True)
        def crm_interactions_recorded(
            self, ctx: UnitOfWork, interactions: Sequence[Interaction]
        ) -> None:
            table = touches_table(ctx.crm.metadata)
            seen_inside.append(
                ctx.connection.execute(
                    sa.select(table.c.touches).where(
                        table.c.customer_id == interactions[0].customer_id
                    )
                ).scalar_one()
            )
            raise RuntimeError("boom")

    with open_crm(db_url, clock, plugins=[FailsAfterExample()]) as crm:
        cid = crm.customers.create({"name": "Ann"}).id
        assert cid is not None
        with pytest.raises(PluginError, match="boom"):
            crm.interactions.record_many([visit(cid, T0), visit(cid, T0)])
        assert seen_inside == [2]  # the example plugin had written, in the same transaction
        assert count(crm, "crm_interactions") == 0
        assert touches(crm, cid) == 0


# --- the plugin's own hook -------------------------------------------------------------


class MilestoneRecorder:
    """Another plugin, implementing the hook the example plugin publishes."""

    crm_plugin_name = "milestone_recorder"

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, datetime]] = []

    @hookimpl
    def example_touch_milestone(self, ctx: UnitOfWork, customer_id: int, touches: int) -> None:
        self.calls.append((customer_id, touches, ctx.now))


@pytest.mark.parametrize("discover", [True, False])
def test_milestone_hook_reaches_other_plugins(
    db_url: str, clock: FrozenClock, discover: bool
) -> None:
    recorder = MilestoneRecorder()
    plugins: list[object] = [recorder] if discover else [crmcore_example.plugin, recorder]
    with open_crm(
        db_url,
        clock,
        discover=discover,
        plugins=plugins,
        plugin_sections={"example": {"milestone": 3}},
    ) as crm:
        cid = crm.customers.create({"name": "Ann"}).id
        assert cid is not None
        crm.interactions.record_many([visit(cid, T0)] * 7)
        assert recorder.calls == [(cid, 3, T0), (cid, 6, T0)]
        clock.advance(hours=1)
        crm.interactions.record_many([visit(cid, T0)] * 2)
        assert recorder.calls[2:] == [(cid, 9, T0 + timedelta(hours=1))]
        assert "example_touch_milestone" in {
            h for p in crm.plugins() if p.name == "milestone_recorder" for h in p.hooks
        }


def test_milestone_hook_failure_rolls_back(db_url: str, clock: FrozenClock) -> None:
    class Refuses:
        crm_plugin_name = "refuses"

        @hookimpl
        def example_touch_milestone(self, ctx: UnitOfWork, customer_id: int, touches: int) -> None:
            raise ValidationError(f"touches: {touches} is too many for customer {customer_id}")

    with open_crm(
        db_url, clock, plugins=[Refuses()], plugin_sections={"example": {"milestone": 2}}
    ) as crm:
        cid = crm.customers.create({"name": "Ann"}).id
        assert cid is not None
        crm.interactions.record(visit(cid, T0))
        with pytest.raises(ValidationError, match="touches: 2 is too many"):
            crm.interactions.record(visit(cid, T0))
        assert touches(crm, cid) == 1
        assert count(crm, "crm_interactions") == 1


# --- validation ------------------------------------------------------------------------


def test_blocked_domain_is_refused(db_url: str, clock: FrozenClock) -> None:
    section = {"blocked_domain": "example.invalid"}
    with open_crm(db_url, clock, plugin_sections={"example": section}) as crm:
        with pytest.raises(ValidationError) as info:
            crm.customers.create({"name": "Eve", "email": "eve@Example.INVALID"})
        assert str(info.value) == "email: domain example.invalid is blocked by the example plugin"
        assert count(crm, "crm_customers") == 0
        assert count(crm, "example_touches") == 0

        rejected: list[tuple[int, str]] = []
        stored = crm.customers.create_many(
            [
                {"name": "Ann", "email": "ann@example.org"},
                {"name": "Eve", "email": "eve@mail.example.invalid"},
            ],
            on_reject=lambda position, item, exc: rejected.append((position, str(exc))),
        )
        assert [c.name for c in stored] == ["Ann"]
        assert rejected == [
            (1, "email: domain mail.example.invalid is blocked by the example plugin")
        ]

        ann = stored[0]
        assert ann.id is not None
        with pytest.raises(ValidationError, match="blocked by the example plugin"):
            crm.customers.update(ann.id, {"email": "ann@example.invalid"})
        assert crm.customers.get(ann.id).email == "ann@example.org"


def test_nothing_is_blocked_without_config(ex_crm: CRM) -> None:
    assert ex_crm.customers.create({"name": "Eve", "email": "eve@example.invalid"}).id


# --- views -------------------------------------------------------------------------------


def test_profile_section(ex_crm: CRM) -> None:
    cid = ex_crm.customers.create({"name": "Ann"}).id
    assert cid is not None
    assert ex_crm.customers.profile(cid)["plugins"]["example"] == {
        "touches": 0,
        "last_touch_at": None,
    }
    ex_crm.interactions.record_many([visit(cid, T0 - timedelta(hours=1)), visit(cid, T0)])
    assert ex_crm.customers.profile(cid)["plugins"]["example"] == {
        "touches": 2,
        "last_touch_at": "2026-01-01T12:00:00+00:00",
    }


def test_metrics_count_touches_in_the_half_open_period(ex_crm: CRM) -> None:
    ann, bob = ex_crm.customers.create_many([{"name": "Ann"}, {"name": "Bob"}])
    assert ann.id is not None and bob.id is not None
    period = Period(T0 - timedelta(days=7), T0)
    ex_crm.interactions.record_many(
        [
            visit(ann.id, period.start),  # included
            visit(ann.id, T0 - timedelta(days=1)),
            visit(bob.id, T0 - timedelta(seconds=1)),
            visit(bob.id, period.end),  # excluded: the end is open
            visit(bob.id, period.start - timedelta(seconds=1)),  # excluded
        ]
    )
    report = ex_crm.metrics(period)
    assert report["example"] == {"touches_in_period": 3, "customers_touched": 2}
    assert ex_crm.metrics(period.previous())["example"] == {
        "touches_in_period": 1,
        "customers_touched": 1,
    }


def test_churn_signals_for_customers_never_touched(ex_crm: CRM) -> None:
    created = ex_crm.customers.create_many([{"name": n} for n in ("Ann", "Bob", "Cy")])
    ids = [c.id for c in created if c.id is not None]
    ex_crm.interactions.record(visit(ids[1], T0))
    signals = [s for s in ex_crm.churn_signals(ids) if s.source == "example"]
    assert signals == [
        ChurnSignal(customer_id=ids[0], source="example", reason="never touched", weight=0.3),
        ChurnSignal(customer_id=ids[2], source="example", reason="never touched", weight=0.3),
    ]
    assert [s for s in ex_crm.churn_signals([ids[1]]) if s.source == "example"] == []


def test_demo_prints_the_most_touched(ex_crm: CRM) -> None:
    ann, bob = ex_crm.customers.create_many([{"name": "Ann"}, {"name": "Bob"}])
    assert ann.id is not None and bob.id is not None
    ex_crm.interactions.record_many([visit(ann.id, T0)] + [visit(bob.id, T0)] * 3)
    console = Console(record=True, width=120)
    ex_crm.call_hook("crm_demo", crm=ex_crm, seed=42, console=console)
    text = console.export_text()
    assert "most touched" in text
    assert text.index("Bob") < text.index("Ann")


# --- privacy ---------------------------------------------------------------------------


def test_export_and_erase(ex_crm: CRM) -> None:
    cid = ex_crm.customers.create({"name": "Ann", "email": "ann@example.org"}).id
    assert cid is not None
    ex_crm.interactions.record(visit(cid, T0))
    exported = ex_crm.customers.export(cid)
    assert exported["plugins"]["example"] == {
        "touches": 1,
        "last_touch_at": "2026-01-01T12:00:00+00:00",
        "moves": 0,
        "updates": 0,
    }
    json.dumps(exported["plugins"]["example"])  # JSON-safe as it is

    ex_crm.customers.erase(cid)
    assert row_of(ex_crm, cid) is None
    assert "example" not in ex_crm.customers.export(cid)["plugins"]


# --- command line ----------------------------------------------------------------------


def invoke(args: list[str]) -> Any:
    """Run ``crm`` as its entry point does: build the group (plugins included), then invoke."""
    return CliRunner().invoke(build_cli(args), args, catch_exceptions=False)


def test_cli_touches(db_url: str, clock: FrozenClock) -> None:
    with open_crm(db_url, clock) as crm:
        cid = crm.customers.create({"name": "Ann"}).id
        assert cid is not None
        crm.interactions.record_many([visit(cid, T0 - timedelta(minutes=5)), visit(cid, T0)])

    result = invoke(["--db", db_url, "example", "touches", str(cid), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "customer_id": cid,
        "touches": 2,
        "last_touch_at": "2026-01-01T12:00:00+00:00",
        "moves": 0,
        "updates": 0,
    }

    result = invoke(["--db", db_url, "example", "touches", str(cid)])
    assert result.exit_code == 0
    assert "touches" in result.stdout and "2026-01-01T12:00:00+00:00" in result.stdout

    result = invoke(["--db", db_url, "example", "touches", "999"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: customer 999 does not exist"


def test_cli_lists_the_plugin_and_its_command(sqlite_url: str) -> None:
    result = invoke(["--db", sqlite_url, "example", "--help"])
    assert result.exit_code == 0
    assert "touches" in result.stdout


def test_cli_without_the_plugin_when_disabled(tmp_path: Path) -> None:
    config = tmp_path / "crm.toml"
    config.write_text('[plugins]\ndisabled = ["example"]\n', encoding="utf-8")
    result = invoke(["--config", str(config), "example", "touches", "1"])
    assert result.exit_code == 2
    assert "No such command 'example'" in result.stderr


def test_crm_demo_includes_the_plugins_report(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    result = invoke(["demo", "--path", str(path), "--customers", "25", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "example: most touched customers" in result.stdout


# --- the guide quotes the example verbatim ------------------------------------------------

GUIDE = Path(__file__).parents[1] / "docs" / "plugins.md"
EXAMPLE_DIR = Path(__file__).parents[1] / "examples" / "crmcore-example"


def guide_excerpts() -> list[tuple[str, str]]:
    """Code blocks of docs/plugins.md whose first line names an example file."""
    excerpts = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S):
        first, _, body = block.partition("\n")
        match = re.fullmatch(r"# ((?:crmcore_example/)?[\w/.]+\.(?:py|toml))", first)
        if match:
            excerpts.append((match.group(1), body))
    return excerpts


def test_guide_has_excerpts() -> None:
    assert len(guide_excerpts()) >= 10


@pytest.mark.parametrize(("path", "body"), guide_excerpts())
def test_guide_excerpt_matches_the_example(path: str, body: str) -> None:
    source = (EXAMPLE_DIR / path).read_text(encoding="utf-8")
    assert body in source, f"docs/plugins.md quotes {path} out of date:\n{body}"


def test_read_only_users_may_only_read(db_url: str, clock: FrozenClock) -> None:
    from crmcore.access import AccessDeniedError, Principal, Role

    crm = CRM.open(
        Config(database_url=db_url, plugin_sections={"example": {"read_only_users": ["auditor"]}}),
        discover=False,
        plugins=[crmcore_example.plugin],
        upgrade=True,
        clock=clock,
    )
    try:
        cid = crm.customers.create({"name": "Ann", "owner": "someone"}).id
        assert cid is not None
        auditor = crm.as_user(Principal("auditor", Role.ADMIN))
        assert auditor.customers.get(cid).name == "Ann"  # an agent could not: the hook allowed it
        with pytest.raises(AccessDeniedError):
            auditor.customers.update(cid, {"industry": "x"})
        assert crm.as_user(Principal("root", Role.ADMIN)).customers.update(cid, {"industry": "x"})
    finally:
        crm.close()


def test_committed_events_reach_the_example_after_commit(ex_crm: CRM) -> None:
    from crmcore_example import notifications

    notifications.RECENT.clear()
    cid = ex_crm.customers.create({"name": "Noted"}).id
    assert ("customer.created", cid) in notifications.RECENT
    with pytest.raises(ValidationError):
        ex_crm.customers.create({"name": "Bad", "email": "not-an-email"})
    assert [t for t, c in notifications.RECENT if c != cid] == []  # nothing from the rollback
