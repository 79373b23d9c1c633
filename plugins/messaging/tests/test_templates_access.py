"""Templates, rendering and signed links obey the principal (the access conformance matrix)."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from crmcore_messaging import rendering, templates, tokens
from crmcore_messaging.tables import messages_table
from crmcore_messaging.tokens import PreviewLinks
from sqlalchemy import insert

from crmcore import CRM
from crmcore.access import AccessDeniedError, Principal, Role
from crmcore.scoping import service_functions, undeclared
from crmcore.testing import (
    EVERYONE_ONLY,
    PRINCIPALS,
    Case,
    Subjects,
    fresh_customer,
    in_unit_of_work,
    run_conformance,
)

MODULES: tuple[Any, ...] = (templates, rendering, tokens)
#: Roles allowed what concerns no customer: every principal (templates hold no customer data).
EVERYONE = frozenset(PRINCIPALS)
TEXT = "Hello {{ customer.name }} {{ link('https://shop.example.com/') }} {{ unsubscribe_url }}"


def _message(crm: CRM, customer_id: int) -> str:
    token = secrets.token_hex(16)
    with crm.unit_of_work() as uow:
        uow.connection.execute(
            insert(messages_table(crm.metadata)).values(
                token=token,
                customer_id=customer_id,
                channel="email",
                purpose="marketing",
                state="sent",
                not_before=uow.now,
                created_at=uow.now,
                updated_at=uow.now,
            )
        )
    return token


def _prepare(crm: CRM, visible: int, hidden: int) -> dict[str, Any]:
    templates.save_template(crm, "kit", locale="en", text=TEXT, subject="Hi {{ customer.name }}")
    token = _message(crm, visible)
    return {
        "customer": crm.customers.get(visible),
        "token": token,
        "click": tokens.tracked_url(crm, token, "https://shop.example.com/kit"),
    }


def _subscribed(crm: CRM, s: Subjects) -> str:
    """A fresh customer (owned, granted like ``visible``) with consent; its unsubscribe link."""
    customer_id = fresh_customer(crm, s)
    crm.customers.update(customer_id, {"consent": {"marketing_email": True}})
    return tokens.unsubscribe_url(crm, _message(crm, customer_id))


def _render(u: Any, s: Subjects) -> Any:
    return rendering.render_message(
        u,
        template="kit",
        customer=s.data["customer"],
        locale=None,
        token=s.data["token"],
        channel="email",
        purpose="marketing",
        variables=None,
        ref_type=None,
        ref_id=None,
    )


CASES: list[Case] = [
    Case(
        "templates.save_template",
        lambda c, s: templates.save_template(c, "kit", locale="en", text="Hi {{ customer.name }}"),
        EVERYONE_ONLY,
    ),
    Case("templates.get_template", lambda c, s: templates.get_template(c, "kit"), EVERYONE),
    Case("templates.list_templates", lambda c, s: templates.list_templates(c), EVERYONE),
    Case("templates.preview", lambda c, s: templates.preview(c, "kit", s.visible)),
    Case("rendering.render_message", in_unit_of_work(_render)),
    Case(
        "rendering.render_with",
        in_unit_of_work(
            lambda u, s: rendering.render_with(
                u, PreviewLinks("https://x.example"), template="kit", customer=s.data["customer"]
            )
        ),
    ),
    Case(
        "rendering.check_renders",
        in_unit_of_work(
            lambda u, s: rendering.check_renders(
                u, subject=None, text=TEXT, html=None, purpose="marketing", locale="en"
            )
        ),
        EVERYONE_ONLY,
    ),
    Case("tokens.resolve_click", lambda c, s: tokens.resolve_click(c, s.data["click"])),
    Case("tokens.unsubscribe", lambda c, s: tokens.unsubscribe(c, s.fresh), setup=_subscribed),
]


def test_every_service_function_is_declared() -> None:
    assert undeclared(*MODULES) == []


def test_templates_conformance_matrix(mcrm: CRM) -> None:
    matrix = run_conformance(
        mcrm,
        "messaging (templates and links)",
        CASES,
        prepare=_prepare,
        functions=service_functions(*MODULES),
    )
    print(matrix.format())
    matrix.assert_clean()
    outcome = {(c.function, c.role): c.outcome for c in matrix.cells}
    assert outcome[("tokens.unsubscribe", "foreign")] == "denied"
    assert outcome[("tokens.unsubscribe", "granted")] == "allowed"
    assert outcome[("templates.save_template", "owner")] == "denied"
    assert outcome[("templates.preview", "foreign")] == "denied"


def test_the_public_endpoint_acts_as_the_system_and_a_user_is_recorded_as_themselves(
    mcrm: CRM,
) -> None:
    alice_customer = mcrm.customers.create(
        {"name": "Mine", "owner": "alice", "consent": {"marketing_email": True}}
    )
    assert alice_customer.id is not None
    token = _message(mcrm, alice_customer.id)
    link = tokens.unsubscribe_url(mcrm, token)
    bob = mcrm.as_user(Principal("bob", Role.AGENT))
    with pytest.raises(AccessDeniedError):
        tokens.unsubscribe(bob, link)
    with pytest.raises(AccessDeniedError):
        templates.save_template(bob, "x", locale="en", text="Hi")
    alice = mcrm.as_user(Principal("alice", Role.AGENT))
    assert tokens.unsubscribe(alice, link).already is False
    (entry,) = mcrm.audit.query(action="customer.update", limit=5).items
    assert entry.actor == "alice"  # a user's view never acts as "unsubscribe"
    manager = mcrm.as_user(Principal("olga", Role.MANAGER))
    saved = templates.save_template(manager, "x", locale="en", text="Hi", actor="mallory")
    assert saved.created_by == "olga"
