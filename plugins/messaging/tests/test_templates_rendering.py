"""The pure part of rendering: the sandboxed environments, errors with their line, the context."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import attrs
import pytest
from crmcore_messaging.rendering import (
    compile_part,
    customer_variables,
    render_part,
    render_parts,
    sample_customer,
    template_context,
)
from crmcore_messaging.template_store import locale_chain, pick_locale
from crmcore_messaging.tokens import PreviewLinks, check_url

from crmcore import Customer, ValidationError

LINKS = PreviewLinks("https://crm.example.com/crm")


def _context(**ref: Any) -> dict[str, Any]:
    plugins = {"loyalty": {"points": 120}}
    return template_context(sample_customer(), ref, plugins, LINKS, "en")


def _refused(source: str, part: str = "body_text", **ref: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        render_part(part, source, _context(**ref))
    assert caught.value.field == part
    return str(caught.value)


def test_a_syntax_error_names_the_part_and_line() -> None:
    with pytest.raises(ValidationError) as caught:
        compile_part("body_html", "<p>\n\n{% if customer.name %}\n{% endfor %}</p>")
    assert str(caught.value).startswith("body_html: line 4: syntax error:")
    with pytest.raises(ValidationError, match=r"^subject: line 1: syntax error: unexpected '}'"):
        compile_part("subject", "Hi {{ customer.name }")


def test_an_unknown_name_and_a_bad_attribute_name_the_line_and_the_variable() -> None:
    assert _refused("Hello\n\n{{ nickname }}") == "body_text: line 3: 'nickname' is undefined"
    assert _refused("Hi\n{{ customer.nmae }}!") == "body_text: line 2: 'customer.nmae' is undefined"
    deep = (
        "{{ customer.name }}\n{% if true %}\n  {{ customer.attributes.tier.upper() }}\n{% endif %}"
    )
    assert _refused(deep) == "body_text: line 3: 'customer.attributes.tier' is undefined"
    assert _refused("x {{ ref['order'] }}") == "body_text: line 1: \"ref['order']\" is undefined"
    assert _refused("{{ loyalty.tier }}") == "body_text: line 1: 'loyalty.tier' is undefined"


def test_the_line_comes_from_the_traceback_when_a_name_occurs_twice() -> None:
    source = "{{ ref.order }}\n{% if ref.order == 1 %}{% endif %}\n{{ ref.code }}"
    assert _refused(source, order=2) == "body_text: line 3: 'ref.code' is undefined"
    loop = "{% for item in ref['items'] %}\n- {{ item.sku }}\n- {{ item.qty }}\n{% endfor %}"
    assert _refused(loop, items=[{"sku": "A"}]) == "body_text: line 3: 'item.qty' is undefined"


def test_a_sandbox_escape_is_refused_with_its_line() -> None:
    message = _refused("ok\n{{ ''.__class__.__mro__ }}")
    assert message.startswith("body_text: line 2: not allowed in a template:")
    assert "__class__" in message
    message = _refused("{{ customer.name.format.__globals__ }}", part="subject")
    assert message.startswith("subject: line 1: not allowed in a template:")
    # The immutable sandbox also refuses changing what the template was given.
    assert "not allowed" in _refused("{{ customer.tags.append('x') }}")


def test_huge_results_are_refused() -> None:
    message = _refused("x\n{{ 'ab' * 600000 }}")
    assert message == (
        "body_text: line 2: not allowed in a template: a result longer than 1000000 is not allowed"
    )
    assert "an exponent above 100" in _refused("{{ 10 ** 1000 }}")
    assert (
        render_part("body_text", "{{ '-' * 3 }}{{ 2 ** 10 }}{{ 3 * 4 }}", _context()) == "---102412"
    )
    loop = "{% for i in range(1000) %}{{ 'x' * 1000 }}{% endfor %}x"
    assert _refused(loop) == "body_text: renders to more than 1000000 characters"


def test_a_link_must_be_http_or_https() -> None:
    for bad in (
        "javascript:alert(1)",
        "data:text/html,x",
        "/relative",
        "ftp://x.example/",
        "http:/x",
    ):
        message = _refused(f"\n{{{{ link({bad!r}) }}}}")
        assert message.startswith("body_text: line 2: link: only http(s) URLs can be tracked")
    assert check_url(" https://shop.example.com/a?b=1 ") == "https://shop.example.com/a?b=1"
    with pytest.raises(ValidationError, match="spaces or controls"):
        check_url("https://x.example/a b")


def test_other_runtime_errors_are_refused_with_their_line() -> None:
    assert (
        _refused("a\nb\n{{ 1 // 0 }}")
        == "body_text: line 3: ZeroDivisionError: integer division or modulo by zero"
    )


def test_html_is_escaped_text_and_subject_are_not() -> None:
    customer = attrs.evolve(sample_customer(), name="Tom & <b>Jerry</b>")
    context = template_context(customer, {"note": "<i>x</i>"}, {}, LINKS, "en")
    subject, text, html = render_parts(
        "Hi {{ customer.name }}\n  again",
        "{{ customer.name }} {{ ref.note }}",
        "<p>{{ customer.name }} {{ ref.note }}</p>"
        "<a href=\"{{ link('https://x.example/?a=1&b=2') }}\">",
        context,
    )
    assert subject == "Hi Tom & <b>Jerry</b> again"  # whitespace runs, newlines too, collapse
    assert text == "Tom & <b>Jerry</b> <i>x</i>"
    assert html is not None
    assert "<p>Tom &amp; &lt;b&gt;Jerry&lt;/b&gt; &lt;i&gt;x&lt;/i&gt;</p>" in html
    assert (
        'href="https://crm.example.com/crm/c/preview?to=https%3A%2F%2Fx.example%2F%3Fa%3D1%26b%3D2"'
        in html
    )


def test_the_context_holds_every_customer_field_and_the_plugins() -> None:
    customer = sample_customer()
    data = customer_variables(customer)
    assert set(data) == {f.name for f in attrs.fields(Customer)}
    assert data["kind"] == "person" and data["stage"] == "active"
    assert data["birth_date"] == date(1990, 5, 17)
    assert data["registered_capital"] == Decimal("1000000")
    assert data["consent"]["marketing_email"] is True and data["tags"] == ["sample"]
    assert all(v is not None for v in data.values()) and data["source_channel"] == "web"
    text = render_part(
        "body_text",
        "{{ customer.birth_date.month }}/{{ loyalty.points }}/{{ locale }}/{{ unsubscribe_url }}"
        "/{{ customer.attributes.tier | default('none') }}",
        _context(),
    )
    assert text == "5/120/en/https://crm.example.com/crm/u/preview/none"
    shadowing = template_context(customer, {}, {"customer": {"x": 1}}, LINKS, "en")
    assert shadowing["customer"]["name"] == "Sample Customer"  # reserved names win


def test_locale_fallback_order() -> None:
    assert locale_chain("fr", "zh-CN") == ["fr", "zh-CN", "en"]
    assert locale_chain(None, "en") == ["en"]
    assert pick_locale(["fr", "zh-CN", "en"], ["en", "zh-CN"]) == "zh-CN"
    assert pick_locale(["fr", "zh-CN", "en"], ["en"]) == "en"
    assert pick_locale(["fr", "zh-CN", "en"], ["ja", "de"]) == "de"
    assert pick_locale(["fr"], []) is None
