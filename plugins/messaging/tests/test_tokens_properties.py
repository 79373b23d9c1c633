"""Properties: a link resolves to what was signed, a tampered one never elsewhere; escaping."""

from __future__ import annotations

import secrets

import attrs
from crmcore_messaging import tokens
from crmcore_messaging.rendering import render_part, sample_customer, template_context
from crmcore_messaging.tables import messages_table
from crmcore_messaging.tokens import PreviewLinks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape
from sqlalchemy import insert

from crmcore import CRM, ValidationError

HOSTS = st.from_regex(r"[a-z][a-z0-9\-]{0,20}(\.[a-z0-9]{1,10}){1,3}", fullmatch=True)
PATHS = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp"), exclude_characters="#"
    ),
    max_size=60,
)
URLS = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}/{path}",
    st.sampled_from(["http", "https", "HTTPS"]),
    HOSTS,
    PATHS,
)
SLOW = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _message(crm: CRM) -> str:
    token = secrets.token_hex(16)
    customer = crm.customers.create({"name": "P", "consent": {"marketing_email": True}})
    with crm.unit_of_work() as uow:
        uow.connection.execute(
            insert(messages_table(crm.metadata)).values(
                token=token,
                customer_id=customer.id,
                channel="email",
                purpose="marketing",
                state="sent",
                not_before=uow.now,
                created_at=uow.now,
                updated_at=uow.now,
            )
        )
    return token


@SLOW
@given(url=URLS, position=st.integers(min_value=0), replacement=st.sampled_from("AZaz09-_."))
def test_a_link_resolves_to_its_url_and_a_tampered_one_never_elsewhere(
    mcrm: CRM, url: str, position: int, replacement: str
) -> None:
    token = _message(mcrm)
    link = tokens.tracked_url(mcrm, token, url)
    assert tokens.resolve_click(mcrm, link) == url
    signed = link.rsplit("/", 1)[1]
    index = position % len(signed)
    tampered = signed[:index] + replacement + signed[index + 1 :]
    try:
        resolved = tokens.resolve_click(mcrm, tampered)
    except ValidationError as exc:
        assert str(exc) in (
            "link: not a valid link (its signature does not match)",
            "link: this link no longer works (its message was deleted)",
        )
    else:  # only a change the encoding ignores (unused bits of the last character) verifies
        assert resolved == url


@settings(max_examples=200, deadline=None)
@given(name=st.text(min_size=1, max_size=40), note=st.text(max_size=40))
def test_html_shows_values_escaped_and_text_shows_them_as_given(name: str, note: str) -> None:
    customer = attrs.evolve(sample_customer(), name=name)
    context = template_context(
        customer, {"note": note}, {}, PreviewLinks("https://x.example"), "en"
    )
    html = render_part("body_html", "<p>{{ customer.name }}|{{ ref.note }}</p>", context)
    assert html == f"<p>{escape(name)}|{escape(note)}</p>"
    assert (
        render_part("body_text", "{{ customer.name }}|{{ ref.note }}", context) == f"{name}|{note}"
    )
