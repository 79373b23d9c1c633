"""Message templates: save (checked, versioned), read, list, preview for a customer.

A template is a named Jinja2 text (and optionally a subject and an HTML body)
per locale. Saving an existing (name, locale) stores version + 1; messages
keep the version they were rendered with. A template that does not render
against :func:`crmcore_messaging.rendering.sample_customer` is refused when
saved, with the part, the line and the variable (see
docs/plugins/messaging.md, "Templates").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert

from crmcore import CRM, AuditEntry, NotFoundError, UnitOfWork, ValidationError
from crmcore.access import Action
from crmcore.checks import choice, integer
from crmcore.scoping import enforce_declared, requires
from crmcore.unit_of_work import acting_user
from crmcore_messaging.rendering import Rendered, check_renders, render_with
from crmcore_messaging.settings import CUSTOMER_PURPOSES, settings_of
from crmcore_messaging.tables import templates_table
from crmcore_messaging.template_store import (
    Template,
    current_templates,
    latest_version,
    load_version,
    locale_chain,
    resolve,
    stored_locales,
)
from crmcore_messaging.tokens import PreviewLinks

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
#: Longest sources accepted (characters).
MAX_SUBJECT, MAX_TEXT, MAX_HTML = 1_000, 100_000, 500_000


def _name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValidationError(
            f"name: {value!r} is not a template name (letters, digits, '_', '.', '-'; "
            "at most 100, starting with a letter or digit)",
            field="name",
            value=value,
        )
    return value


def _source(field: str, value: Any, limit: int, *, required: bool = False) -> str | None:
    """A template source kept as given (whitespace matters); empty counts as absent."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValidationError(f"{field}: is required", field=field)
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{field}: expected text, got {type(value).__name__}", field=field)
    if len(value) > limit:
        raise ValidationError(f"{field}: is longer than {limit} characters", field=field)
    return value


def _locale(crm: CRM, value: Any) -> str:
    return choice("locale", value, settings_of(crm).locales)


@requires(Action.WRITE)  # a template goes to every customer: managers and admins
def save_template(
    crm: CRM,
    name: str,
    *,
    locale: str,
    text: str,
    subject: str | None = None,
    html: str | None = None,
    purpose: str = "marketing",
    channel: str | None = None,
    sample: Mapping[str, Any] | None = None,
    sample_ref_type: str | None = None,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> Template:
    """Check and store a template; an existing (name, locale) gets the next version.

    ``locale`` must be one of ``[plugins.messaging] locales``, ``purpose`` one
    of marketing, survey, service, ``channel`` a configured channel or
    ``None`` (any channel). Before storing, every part is compiled and
    rendered for the sample customer with ``ref`` = ``sample`` and the
    plugins' variables (asked with ``ref_type`` = ``sample_ref_type``): a
    syntax error, an undefined variable, a sandbox violation or a non-http(s)
    ``link()`` is a ValidationError such as ``body_text: line 2:
    'customer.nmae' is undefined``, and nothing is stored. Audited as
    ``messaging.template_save``.
    """
    name = _name(name)
    locale = _locale(crm, locale)
    purpose = choice("purpose", purpose, CUSTOMER_PURPOSES)
    if channel is not None:
        channel = settings_of(crm).channel(channel).name
    checked_text = _source("text", text, MAX_TEXT, required=True)
    assert checked_text is not None
    checked_subject = _source("subject", subject, MAX_SUBJECT)
    checked_html = _source("html", html, MAX_HTML)
    with crm.unit_of_work(actor, ctx) as uow:
        check_renders(
            uow,
            subject=checked_subject,
            text=checked_text,
            html=checked_html,
            purpose=purpose,
            locale=locale,
            sample=sample,
            sample_ref_type=sample_ref_type,
        )
        version = latest_version(uow.connection, crm.metadata, name, locale) + 1
        table = templates_table(crm.metadata)
        inserted = uow.connection.execute(
            insert(table).values(
                name=name,
                locale=locale,
                version=version,
                purpose=purpose,
                channel=channel,
                subject=checked_subject,
                body_text=checked_text,
                body_html=checked_html,
                created_at=uow.now,
                created_by=acting_user(uow),
            )
        ).inserted_primary_key
        assert inserted is not None
        new_id = int(inserted[0])
        details = {"name": name, "locale": locale, "version": version}
        crm.audit.record(
            uow, [AuditEntry("messaging.template_save", "message_template", new_id, None, details)]
        )
        saved = load_version(uow.connection, crm.metadata, name, locale, version)
        assert saved is not None
        return saved


@requires(Action.READ, scoped=True)  # a template holds no customer data
def get_template(
    crm: CRM,
    name: str,
    *,
    locale: str | None = None,
    version: int | None = None,
    ctx: UnitOfWork | None = None,
) -> Template:
    """Template ``name`` in ``locale`` at ``version`` (default: the current one).

    Without ``locale`` the fallback of rendering applies (``default_locale``,
    ``"en"``, then the first stored locale), also to find the locale of a
    ``version``. NotFoundError for an unknown name, a locale or a version
    not stored (naming the stored locales).
    """
    if version is not None:
        integer("version", version, 1, 2**31 - 1)
    with crm.reading(ctx) as uow:
        if locale is None:
            chain = locale_chain(None, settings_of(crm).default_locale)
            current = resolve(uow.connection, crm.metadata, name, chain)
            if version is None:
                return current
            locale = current.locale
        found = load_version(uow.connection, crm.metadata, name, locale, version)
        if found is not None:
            return found
        locales = stored_locales(uow.connection, crm.metadata, name)
    if not locales:
        raise NotFoundError(f"template: no template named {name!r}")
    if locale not in locales:
        raise NotFoundError(
            f"locale: template {name!r} has no locale {locale!r} (stored: {', '.join(locales)})"
        )
    raise NotFoundError(f"version: template {name!r} ({locale}) has no version {version}")


@requires(Action.READ, scoped=True)  # templates hold no customer data
def list_templates(
    crm: CRM,
    *,
    name: str | None = None,
    locale: str | None = None,
    all_versions: bool = False,
    ctx: UnitOfWork | None = None,
) -> list[Template]:
    """The current version of every (name, locale), by name and locale (every version if asked)."""
    with crm.reading(ctx) as uow:
        return current_templates(
            uow.connection, crm.metadata, name=name, locale=locale, all_versions=all_versions
        )


@requires(Action.READ, customer="customer_id")
def preview(
    crm: CRM,
    name: str,
    customer_id: int,
    *,
    locale: str | None = None,
    variables: Mapping[str, Any] | None = None,
    channel: str | None = None,
    purpose: str | None = None,
    ctx: UnitOfWork | None = None,
) -> Rendered:
    """Render template ``name`` for a customer, without sending or storing anything.

    The locale falls back as when sending (:func:`render_message
    <crmcore_messaging.rendering.render_message>`); ``purpose`` defaults to
    the template's. Links are placeholders that show their destination
    (``{base_url}/c/preview?to=...``, ``{base_url}/u/preview``): nothing is
    signed. ValidationError ``<part>: line <n>: ...`` when it does not render
    for this customer (e.g. a missing attribute).
    """
    if locale is not None:
        locale = _locale(crm, locale)
    with crm.reading(ctx) as uow:
        customer = crm.customers.get(customer_id, ctx=uow)
        return render_with(
            uow,
            PreviewLinks(settings_of(crm).base_url),
            template=name,
            customer=customer,
            locale=locale,
            channel=channel,
            purpose=purpose,
            variables=variables,
        )


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)

__all__ = [
    "MAX_HTML",
    "MAX_SUBJECT",
    "MAX_TEXT",
    "Template",
    "get_template",
    "list_templates",
    "preview",
    "save_template",
]
