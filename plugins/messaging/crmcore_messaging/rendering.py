"""Rendering templates: sandboxed Jinja2, the context a template sees, errors with their line.

Every part is rendered by ``jinja2.sandbox.ImmutableSandboxedEnvironment``
(a :class:`~jinja2.sandbox.SandboxedEnvironment` that also forbids changing
lists and dicts) with ``StrictUndefined``: a missing variable is an error,
never an empty string. ``body_html`` is rendered with autoescape on,
``subject`` and ``body_text`` with autoescape off. The context is built by
:func:`template_context` (documented in docs/plugins/messaging.md,
"Templates"). A template that fails raises ValidationError
``<part>: line <n>: <what>``, e.g. ``body_text: line 2: 'customer.nmae' is
undefined``.
"""

from __future__ import annotations

import enum
import functools
import re
import traceback
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol

import attrs
from attrs import frozen
from jinja2 import StrictUndefined, Template, TemplateSyntaxError, UndefinedError, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from crmcore import CRM, Customer, UnitOfWork, ValidationError
from crmcore.access import Action
from crmcore.errors import CRMError, PluginError
from crmcore.model.entities import Channel, Consent, CustomerKind, Gender, Stage
from crmcore.scoping import enforce_declared, requires
from crmcore_messaging.settings import settings_of
from crmcore_messaging.template_store import locale_chain, resolve
from crmcore_messaging.tokens import PreviewLinks, SignedLinks

#: The template parts, by their column (and field) name.
PARTS = ("subject", "body_text", "body_html")
#: Context names a plugin's variables cannot take.
RESERVED = ("customer", "ref", "link", "unsubscribe_url", "locale")
#: The hook whose answers become one context key per plugin.
VARIABLES_HOOK = "messaging_template_variables"

#: The longest text a part may render to, and the largest ``*`` or ``**`` result allowed.
MAX_OUTPUT = 1_000_000
MAX_EXPONENT = 100


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox that also bounds ``*`` and ``**`` (no huge strings or numbers)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Refuse a repetition longer than MAX_OUTPUT and an exponent above MAX_EXPONENT."""
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"an exponent above {MAX_EXPONENT} is not allowed")
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                repeated = isinstance(sequence, str | list | tuple) and isinstance(count, int)
                if repeated and len(sequence) * count > MAX_OUTPUT:
                    raise SecurityError(f"a result longer than {MAX_OUTPUT} is not allowed")
        return super().call_binop(context, operator, left, right)


_TEXT = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_HTML = _Sandbox(undefined=StrictUndefined, autoescape=True, keep_trailing_newline=True)
_UNDEFINED = re.compile(r"^'(?P<name>[^']+)' is undefined$")
_NO_ATTRIBUTE = re.compile(r"has no attribute '(?P<name>[^']+)'$")
_NO_ELEMENT = re.compile(r"has no element (?P<name>.+)$")


class Links(Protocol):
    """What a template's ``link(url)`` and ``unsubscribe_url`` come from."""

    unsubscribe_url: str

    def link(self, url: str) -> str:
        """The tracked URL of ``url``."""
        ...


@frozen
class Rendered:
    """A rendered message: the parts and which template version and locale made them."""

    subject: str | None
    text: str
    html: str | None
    template_version: int
    locale: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "template_version": self.template_version,
            "locale": self.locale,
        }


def _filename(part: str) -> str:
    return f"<messaging:{part}>"


@functools.lru_cache(maxsize=512)
def compile_part(part: str, source: str) -> Template:
    """Compile one part (``subject``, ``body_text``, ``body_html``); syntax errors name the line."""
    environment = _HTML if part == "body_html" else _TEXT
    try:
        code = environment.compile(source, name=part, filename=_filename(part))
    except TemplateSyntaxError as exc:
        raise ValidationError(
            f"{part}: line {exc.lineno}: syntax error: {exc.message}", field=part
        ) from None
    return environment.template_class.from_code(environment, code, environment.make_globals(None))


def _chains(source: str) -> list[tuple[int, list[str]]]:
    """Every variable path of the template (``customer.name`` -> [customer, name]) with its line."""
    found: list[tuple[int, list[str]]] = []

    def path(node: nodes.Node) -> list[str] | None:
        if isinstance(node, nodes.Name):
            return [node.name]
        if isinstance(node, nodes.Getattr):
            inner = path(node.node)
            return None if inner is None else [*inner, node.attr]
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            inner = path(node.node)
            return None if inner is None else [*inner, f"[{node.arg.value!r}]"]
        return None

    tree = _TEXT.parse(source)
    for node in tree.find_all((nodes.Name, nodes.Getattr, nodes.Getitem)):
        chain = path(node)
        if chain is not None:
            found.append((node.lineno, chain))
    return found


def _shown(chain: list[str]) -> str:
    return "".join(p if p.startswith("[") or i == 0 else f".{p}" for i, p in enumerate(chain))


def _missing(message: str) -> str | None:
    for pattern in (_UNDEFINED, _NO_ATTRIBUTE, _NO_ELEMENT):
        match = pattern.search(message)
        if match is not None:
            name = match.group("name")
            return f"[{name}]" if pattern is _NO_ELEMENT else name
    return None


def _undefined(source: str, message: str, line: int | None) -> tuple[int | None, str]:
    """The line and the dotted name of the undefined variable a message reports."""
    name = _missing(message)
    if name is None:
        return line, message
    candidates = []
    for lineno, chain in _chains(source):
        if chain[-1] in (name, f"[{name!r}]"):
            candidates.append((lineno, chain))
    on_line = [c for c in candidates if line is None or c[0] == line]
    chosen = on_line[0] if on_line else (candidates[0] if candidates else None)
    if chosen is None:
        return line, message
    return (line if line is not None else chosen[0]), f"{_shown(chosen[1])!r} is undefined"


def _line(exc: BaseException, part: str) -> int | None:
    """The template line of the innermost traceback frame of ``part`` (Jinja rewrites them)."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == _filename(part):
            line = frame.lineno
    return line


def render_part(part: str, source: str, context: Mapping[str, Any]) -> str:
    """Render one part; any failure is a ValidationError ``<part>: line <n>: <what>``."""
    template = compile_part(part, source)
    try:
        rendered = template.render(context)
        if len(rendered) > MAX_OUTPUT:
            raise ValidationError(
                f"{part}: renders to more than {MAX_OUTPUT} characters", field=part
            )
        return rendered
    except ValidationError as exc:
        if exc.field == part:
            raise
        line, what = _line(exc, part), str(exc)  # from link(): a URL that may not be tracked
    except UndefinedError as exc:
        line, what = _undefined(source, str(exc), _line(exc, part))
    except SecurityError as exc:
        line, what = _line(exc, part), f"not allowed in a template: {exc}"
    except CRMError:
        raise
    except Exception as exc:
        line, what = _line(exc, part), f"{type(exc).__name__}: {exc}"
    where = f"line {line}: " if line is not None else ""
    raise ValidationError(f"{part}: {where}{what}", field=part)


def customer_variables(customer: Customer) -> dict[str, Any]:
    """The ``customer`` of a template: every Customer field (enums as their text values).

    Dates stay dates and amounts Decimals (``{{ customer.birth_date.month }}``);
    ``tags`` is a list, ``consent`` and ``attributes`` are dicts.
    """
    data: dict[str, Any] = {}
    for field in attrs.fields(Customer):
        value = getattr(customer, field.name)
        if isinstance(value, enum.Enum):
            value = value.value
        elif isinstance(value, Consent):
            value = attrs.asdict(value)
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, dict):
            value = dict(value)
        data[field.name] = value
    return data


def sample_customer() -> Customer:
    """The customer a template is checked against when saved: every field filled, no attributes."""
    moment = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    return Customer(
        name="Sample Customer",
        kind=CustomerKind.PERSON,
        id=0,
        email="sample@example.com",
        phone="+8613800000000",
        address="1 Sample Road, Shanghai",
        gender=Gender("female"),
        birth_date=date(1990, 5, 17),
        company_name="Sample Co., Ltd.",
        industry="retail",
        size=50,
        registered_capital=Decimal("1000000"),
        founding_date=date(2010, 3, 1),
        owner="sample-owner",
        stage=Stage.ACTIVE,
        source_channel=Channel.WEB,
        tags=("sample",),
        attributes={},
        consent=Consent(True, True, True, True, True),
        created_at=moment,
        updated_at=moment,
    )


def _plugin_variables(
    uow: UnitOfWork, customer: Customer, purpose: str, ref_type: str | None, ref_id: str | None
) -> dict[str, Mapping[str, Any]]:
    """Every plugin's ``messaging_template_variables`` answer, keyed by the plugin's name."""
    answers = uow.crm.collect(
        VARIABLES_HOOK,
        ctx=uow,
        customer=customer,
        purpose=purpose,
        ref_type=ref_type,
        ref_id=ref_id,
    )
    for plugin, answer in answers.items():
        if not isinstance(answer, Mapping):
            raise PluginError(
                f"plugin {plugin!r} failed in {VARIABLES_HOOK}: expected a mapping, "
                f"got {type(answer).__name__}",
                plugin=plugin,
                hook=VARIABLES_HOOK,
            )
    return {p: a for p, a in answers.items() if p not in RESERVED}


def template_context(
    customer: Customer,
    variables: Mapping[str, Any] | None,
    plugins: Mapping[str, Mapping[str, Any]],
    links: Links,
    locale: str,
) -> dict[str, Any]:
    """What a template sees: one key per plugin, then the reserved names.

    ``customer``, ``ref``, ``link``, ``unsubscribe_url`` and ``locale`` win
    over plugins of those names.
    """
    link: Callable[[str], str] = links.link
    return {
        **plugins,
        "customer": customer_variables(customer),
        "ref": dict(variables or {}),
        "link": link,
        "unsubscribe_url": links.unsubscribe_url,
        "locale": locale,
    }


def render_parts(
    subject: str | None, text: str, html: str | None, context: Mapping[str, Any]
) -> tuple[str | None, str, str | None]:
    """Render the three parts; the subject's whitespace runs (newlines too) become one space."""
    shown_subject = None
    if subject is not None:
        shown_subject = " ".join(render_part("subject", subject, context).split())
    shown_text = render_part("body_text", text, context)
    shown_html = None if html is None else render_part("body_html", html, context)
    return shown_subject, shown_text, shown_html


def _requested_locale(uow: UnitOfWork, customer: Customer, locale: str | None) -> str | None:
    """The locale asked for: ``locale`` when given, else the customer's locale attribute."""
    if locale:
        return locale
    wanted = customer.attributes.get(settings_of(uow.crm).locale_attribute)
    return wanted if isinstance(wanted, str) and wanted.strip() else None


def _customer_of(crm: CRM, ctx: UnitOfWork | None, arguments: Mapping[str, Any]) -> Any:
    customer = arguments.get("customer")
    return customer.id if isinstance(customer, Customer) else None


def _render(
    uow: UnitOfWork,
    links: Links,
    template: str,
    customer: Customer,
    locale: str | None,
    channel: str | None,
    purpose: str | None,
    variables: Mapping[str, Any] | None,
    ref: tuple[str | None, str | None],
) -> Rendered:
    if variables is not None and not isinstance(variables, Mapping):
        raise ValidationError("variables: expected a mapping", field="variables")
    chain = locale_chain(
        _requested_locale(uow, customer, locale), settings_of(uow.crm).default_locale
    )
    stored = resolve(uow.connection, uow.crm.metadata, template, chain)
    if stored.channel is not None and channel is not None and stored.channel != channel:
        raise ValidationError(
            f"channel: template {template!r} is for channel {stored.channel!r}, not {channel!r}",
            field="channel",
        )
    plugins = _plugin_variables(uow, customer, purpose or stored.purpose, *ref)
    context = template_context(customer, variables, plugins, links, stored.locale)
    subject, text, html = render_parts(stored.subject, stored.text, stored.html, context)
    return Rendered(subject, text, html, stored.version, stored.locale)


@requires(Action.READ, customer=_customer_of)
def render_with(
    ctx: UnitOfWork,
    links: Links,
    *,
    template: str,
    customer: Customer,
    locale: str | None = None,
    channel: str | None = None,
    purpose: str | None = None,
    variables: Mapping[str, Any] | None = None,
    ref_type: str | None = None,
    ref_id: str | None = None,
) -> Rendered:
    """:func:`render_message` with other link builders (``templates.preview`` uses placeholders).

    ``purpose`` defaults to the template's (what the plugins are asked with).
    """
    return _render(
        ctx, links, template, customer, locale, channel, purpose, variables, (ref_type, ref_id)
    )


@requires(Action.WRITE)  # what save_template needs: it checks a template before storing it
def check_renders(
    ctx: UnitOfWork,
    *,
    subject: str | None,
    text: str,
    html: str | None,
    purpose: str,
    locale: str,
    sample: Mapping[str, Any] | None = None,
    sample_ref_type: str | None = None,
) -> Rendered:
    """Render the parts for :func:`sample_customer`; ValidationError with the line when one fails.

    ``sample`` are the ``ref`` variables to check with, ``sample_ref_type``
    the ``ref_type`` the plugins are asked with (``ref_id`` ``None``). Links
    are placeholders (:class:`~crmcore_messaging.tokens.PreviewLinks`):
    nothing is signed or stored.
    """
    for part, source in (("subject", subject), ("body_text", text), ("body_html", html)):
        if source is not None:
            compile_part(part, source)
    if sample is not None and not isinstance(sample, Mapping):
        raise ValidationError("sample: expected a mapping of variables", field="sample")
    customer = sample_customer()
    plugins = _plugin_variables(ctx, customer, purpose, sample_ref_type, None)
    links = PreviewLinks(settings_of(ctx.crm).base_url)
    context = template_context(customer, sample, plugins, links, locale)
    shown_subject, shown_text, shown_html = render_parts(subject, text, html, context)
    return Rendered(shown_subject, shown_text, shown_html, 0, locale)


@requires(Action.READ, customer=_customer_of)
def render_message(
    ctx: UnitOfWork,
    *,
    template: str,
    customer: Customer,
    locale: str | None,
    token: str,
    channel: str,
    purpose: str,
    variables: Mapping[str, Any] | None,
    ref_type: str | None,
    ref_id: str | None,
) -> Rendered:
    """Render template ``template`` for ``customer`` inside ``ctx`` (``queue.enqueue`` calls it).

    ``token`` is the message's: ``link(url)`` and ``unsubscribe_url`` are
    signed for it (:mod:`crmcore_messaging.tokens`). The locale is ``locale``
    when given, else the customer's ``attributes[locale_attribute]``, falling
    back to ``default_locale``, ``"en"``, then the first stored locale in
    sorted order; the one used is ``Rendered.locale``, with the version of
    the template in ``Rendered.template_version``. NotFoundError for an
    unknown template; ValidationError ``<part>: line <n>: ...`` when it fails
    to render (a variable missing for this customer, a non-http(s) link), or
    when the template is bound to another channel.
    """
    links = SignedLinks(ctx, token)
    return _render(
        ctx, links, template, customer, locale, channel, purpose, variables, (ref_type, ref_id)
    )


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)

__all__ = [
    "PARTS",
    "RESERVED",
    "VARIABLES_HOOK",
    "Links",
    "Rendered",
    "check_renders",
    "compile_part",
    "customer_variables",
    "render_message",
    "render_part",
    "render_parts",
    "render_with",
    "sample_customer",
    "template_context",
]
