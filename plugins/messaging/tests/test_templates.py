"""Templates on both backends: saved (checked, versioned), read, listed, rendered and previewed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from crmcore_messaging import templates
from crmcore_messaging.rendering import render_message
from crmcore_messaging.tables import secrets_table, templates_table
from sqlalchemy import func, select

from crmcore import CRM, Customer, NotFoundError, UnitOfWork, ValidationError
from crmcore.hooks import hookimpl

from .conftest import SECTION


class LoyaltyVariables:
    """A throw-away plugin giving templates ``{{ loyalty.points }}``."""

    crm_plugin_name = "loyalty_vars"

    def __init__(self) -> None:
        self.calls: list[tuple[int | None, str, str | None, str | None]] = []

    @hookimpl(optionalhook=True)
    def messaging_template_variables(
        self,
        ctx: UnitOfWork,
        customer: Customer,
        purpose: str,
        ref_type: str | None,
        ref_id: str | None,
    ) -> Mapping[str, Any] | None:
        """Points: 10 per character of the name (0 for the sample customer)."""
        self.calls.append((customer.id, purpose, ref_type, ref_id))
        return {"points": 0 if customer.id == 0 else 10 * len(customer.name)}


def _count(crm: CRM) -> int:
    table = templates_table(crm.metadata)
    with crm.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def _render(crm: CRM, customer: Customer, template: str = "welcome", **extra: Any) -> Any:
    arguments: dict[str, Any] = {
        "template": template,
        "customer": customer,
        "locale": None,
        "token": "t" * 32,
        "channel": "email",
        "purpose": "marketing",
        "variables": None,
        "ref_type": None,
        "ref_id": None,
        **extra,
    }
    with crm.unit_of_work() as uow:
        return render_message(uow, **arguments)


def test_save_versions_and_a_message_keeps_its_version(mcrm: CRM) -> None:
    first = templates.save_template(
        mcrm,
        "welcome",
        locale="en",
        subject="Hi {{ customer.name }}",
        text="Hello {{ customer.name }}",
    )
    assert (first.version, first.purpose, first.channel) == (1, "marketing", None)
    customer = mcrm.customers.create({"name": "Ann", "email": "ann@example.com"})
    before = _render(mcrm, customer)
    assert (before.subject, before.text, before.template_version, before.locale) == (
        "Hi Ann",
        "Hello Ann",
        1,
        "en",
    )
    second = templates.save_template(
        mcrm, "welcome", locale="en", text="Welcome back, {{ customer.name }}", actor="olga"
    )
    assert second.version == 2 and second.created_by == "olga" and second.subject is None
    after = _render(mcrm, customer)
    assert (after.text, after.template_version, after.subject) == ("Welcome back, Ann", 2, None)
    assert templates.get_template(mcrm, "welcome", locale="en", version=1).text == first.text
    assert templates.get_template(mcrm, "welcome", locale="en").version == 2
    assert templates.get_template(mcrm, "welcome", version=1).text == first.text  # fallback locale
    with pytest.raises(ValidationError, match=r"^version: expected an integer"):
        templates.get_template(mcrm, "welcome", version="1")  # type: ignore[arg-type]
    listed = templates.list_templates(mcrm)
    assert [(t.name, t.locale, t.version) for t in listed] == [("welcome", "en", 2)]
    every = templates.list_templates(mcrm, all_versions=True)
    assert [t.version for t in every] == [1, 2]
    entries = mcrm.audit.query(action="messaging.*", limit=10).items
    assert sorted(e.details["version"] for e in entries) == [1, 2]
    assert {e.actor for e in entries} == {None, "olga"}


def test_locale_fallback_requested_then_default_then_en_then_any(
    open_crm: Callable[..., CRM],
) -> None:
    crm = open_crm({**SECTION, "locales": ["zh-CN", "en", "ja", "de"], "default_locale": "zh-CN"})
    for locale, text in (("en", "Hello"), ("zh-CN", "你好"), ("ja", "こんにちは")):
        templates.save_template(crm, "greet", locale=locale, text=text + " {{ customer.name }}")
    templates.save_template(crm, "only_de", locale="de", text="Hallo")
    templates.save_template(crm, "only_en", locale="en", text="Hi")
    ja, none, fr = crm.customers.create_many(
        [
            {"name": "Aki", "attributes": {"locale": "ja"}},
            {"name": "Bo"},
            {"name": "Cé", "attributes": {"locale": "fr"}},
        ]
    )
    assert (_render(crm, ja, "greet").text, _render(crm, ja, "greet").locale) == (
        "こんにちは Aki",
        "ja",
    )
    assert _render(crm, none, "greet").locale == "zh-CN"
    assert _render(crm, fr, "greet").locale == "zh-CN"  # fr not stored: the default locale
    assert _render(crm, ja, "greet", locale="en").locale == "en"  # given wins over the attribute
    assert _render(crm, fr, "only_en").locale == "en"
    assert _render(crm, fr, "only_de").locale == "de"  # the only one stored
    with pytest.raises(NotFoundError, match="no template named 'missing'"):
        _render(crm, fr, "missing")
    assert templates.get_template(crm, "greet").locale == "zh-CN"


def test_a_template_that_does_not_render_is_refused_with_line_and_variable(mcrm: CRM) -> None:
    with pytest.raises(ValidationError) as caught:
        templates.save_template(
            mcrm, "bad", locale="en", text="Dear {{ customer.name }},\n{{ customer.nmae }}"
        )
    assert str(caught.value) == "body_text: line 2: 'customer.nmae' is undefined"
    with pytest.raises(ValidationError, match=r"^body_text: line 3: 'coupon_code' is undefined$"):
        templates.save_template(mcrm, "bad", locale="en", text="line one\n\n{{ coupon_code }}")
    with pytest.raises(ValidationError, match=r"^body_html: line 2: syntax error"):
        templates.save_template(
            mcrm, "bad", locale="en", text="ok", html="<p>\n{{ customer.name }</p>"
        )
    with pytest.raises(ValidationError, match=r"^subject: line 1: not allowed in a template"):
        templates.save_template(mcrm, "bad", locale="en", text="ok", subject="{{ ''.__class__ }}")
    with pytest.raises(ValidationError, match=r"^body_text: line 1: link: only http\(s\) URLs"):
        templates.save_template(mcrm, "bad", locale="en", text="{{ link('javascript:alert(1)') }}")
    assert _count(mcrm) == 0
    # The ref variables a template needs are given as a sample when saving.
    with pytest.raises(ValidationError, match=r"'ref.order_no' is undefined"):
        templates.save_template(mcrm, "order", locale="en", text="Order {{ ref.order_no }}")
    saved = templates.save_template(
        mcrm, "order", locale="en", text="Order {{ ref.order_no }}", sample={"order_no": "A1"}
    )
    customer = mcrm.customers.create({"name": "Ann"})
    with pytest.raises(ValidationError, match=r"^body_text: line 1: 'ref.order_no' is undefined"):
        _render(mcrm, customer, "order")
    assert _render(mcrm, customer, "order", variables={"order_no": "Z9"}).text == "Order Z9"
    assert saved.version == 1 and _count(mcrm) == 1


def test_bad_input_is_refused_clearly(mcrm: CRM) -> None:
    def refused(message: str, **changes: Any) -> None:
        arguments: dict[str, Any] = {"locale": "en", "text": "Hi", **changes}
        name = arguments.pop("name", "ok")
        with pytest.raises(ValidationError, match=message):
            templates.save_template(mcrm, name, **arguments)

    refused(r"^locale: 'fr' is not one of: zh-CN, en", locale="fr")
    refused(r"^purpose: 'spam' is not one of", purpose="spam")
    refused(r"^channel: 'fax' is not a configured channel", channel="fax")
    refused(r"^text: is required", text="   ")
    refused(r"^name: 'has space' is not a template name", name="has space")
    refused(r"^sample: expected a mapping", sample=["x"])
    with pytest.raises(NotFoundError, match="no template named 'nope'"):
        templates.get_template(mcrm, "nope")
    templates.save_template(mcrm, "ok", locale="en", text="Hi")
    with pytest.raises(NotFoundError, match=r"has no locale 'zh-CN' \(stored: en\)"):
        templates.get_template(mcrm, "ok", locale="zh-CN")
    with pytest.raises(NotFoundError, match="has no version 7"):
        templates.get_template(mcrm, "ok", locale="en", version=7)
    customer = mcrm.customers.create({"name": "Ann"})
    assert customer.id is not None
    with pytest.raises(ValidationError, match=r"^locale: 'xx' is not one of"):
        templates.preview(mcrm, "ok", customer.id, locale="xx")
    with pytest.raises(NotFoundError, match="no template named 'nope'"):
        templates.preview(mcrm, "nope", customer.id)


def test_channel_bound_template_refuses_another_channel(mcrm: CRM) -> None:
    templates.save_template(mcrm, "app", locale="en", text="In app", channel="in_app")
    customer = mcrm.customers.create({"name": "Ann"})
    assert _render(mcrm, customer, "app", channel="in_app").text == "In app"
    with pytest.raises(
        ValidationError, match="template 'app' is for channel 'in_app', not 'email'"
    ):
        _render(mcrm, customer, "app")


def test_plugin_variables_are_keyed_by_plugin_name(open_crm: Callable[..., CRM]) -> None:
    variables = LoyaltyVariables()
    crm = open_crm(extra=[variables])
    templates.save_template(
        crm,
        "points",
        locale="en",
        text="You have {{ loyalty_vars.points }} points",
        purpose="service",
        sample_ref_type="campaigns.campaign",
    )
    assert variables.calls == [(0, "service", "campaigns.campaign", None)]  # the sample check
    customer = crm.customers.create({"name": "Ann"})
    rendered = _render(crm, customer, "points", purpose="survey", ref_type="sales.deal", ref_id="4")
    assert rendered.text == "You have 30 points"
    assert variables.calls[-1] == (customer.id, "survey", "sales.deal", "4")
    with pytest.raises(ValidationError, match=r"'loyalty_vars\.tier' is undefined"):
        templates.save_template(crm, "tier", locale="en", text="{{ loyalty_vars.tier }}")


def test_preview_renders_for_a_customer_without_storing_anything(
    open_crm: Callable[..., CRM],
) -> None:
    mcrm = open_crm({**SECTION, "base_url": "https://crm.example.com/crm/"})
    templates.save_template(
        mcrm,
        "promo",
        locale="zh-CN",
        subject="{{ customer.name }}: 您好",
        text="{{ ref.offer | default('9折') }} {{ link('https://shop.example.com/p?id=1') }}\n"
        "{{ unsubscribe_url }}",
        html="<p>{{ customer.name }}</p>",
    )
    customer = mcrm.customers.create({"name": "李<雷>", "attributes": {"locale": "zh-CN"}})
    assert customer.id is not None
    rendered = templates.preview(mcrm, "promo", customer.id, variables={"offer": "8折"})
    assert rendered.subject == "李<雷>: 您好" and rendered.locale == "zh-CN"
    assert rendered.text == (
        "8折 https://crm.example.com/crm/c/preview?to=https%3A%2F%2Fshop.example.com%2Fp%3Fid%3D1\n"
        "https://crm.example.com/crm/u/preview"
    )
    assert rendered.html == "<p>李&lt;雷&gt;</p>"
    assert templates.preview(mcrm, "promo", customer.id, locale="en").locale == "zh-CN"
    with mcrm.engine.connect() as connection:
        assert connection.execute(select(secrets_table(mcrm.metadata))).all() == []
