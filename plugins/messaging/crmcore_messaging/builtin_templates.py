# Chinese text takes full-width punctuation, which RUF001 would flag as confusable.
# ruff: noqa: RUF001
"""The templates the other plugins' messages use until a deployment saves its own.

Saving a template of the same name and locale (``crm messages templates add``)
makes a new version that replaces the built-in one, which is stored as version
1 the first time a message needs it (see :func:`ensure_builtin`, which the
integrations call inside their unit of work).
"""

from __future__ import annotations

from datetime import datetime

from attrs import frozen
from sqlalchemy import Connection, MetaData, insert
from sqlalchemy.exc import IntegrityError

from crmcore_messaging.tables import templates_table
from crmcore_messaging.template_store import stored_locales

#: The actor stored as ``created_by`` of a built-in template.
BUILTIN_AUTHOR = "messaging (built-in)"


@frozen
class Builtin:
    """One built-in template in one locale."""

    name: str
    locale: str
    purpose: str
    subject: str
    text: str


_UNSUBSCRIBE_EN = "\n\nUnsubscribe: {{ unsubscribe_url }}\n"
_UNSUBSCRIBE_ZH = "\n\n退订：{{ unsubscribe_url }}\n"

#: Every built-in template, by (name, locale).
BUILTINS: dict[tuple[str, str], Builtin] = {
    (b.name, b.locale): b
    for b in (
        Builtin(
            "surveys.invitation",
            "en",
            "survey",
            "{{ ref.survey_title }}: tell us what you think",
            "Dear {{ customer.name }},\n\nplease answer our short survey "
            '"{{ ref.survey_title }}":\n{{ ref.survey_url }}\n\nThank you.' + _UNSUBSCRIBE_EN,
        ),
        Builtin(
            "surveys.invitation",
            "zh-CN",
            "survey",
            "{{ ref.survey_title }}：诚邀您参与调查",
            "尊敬的{{ customer.name }}：\n\n诚邀您参与我们的简短调查“{{ ref.survey_title }}”："
            "\n{{ ref.survey_url }}\n\n感谢您的支持！" + _UNSUBSCRIBE_ZH,
        ),
        Builtin(
            "complaints.acknowledged",
            "en",
            "service",
            "We are looking into your complaint no. {{ ref.complaint_id }}",
            "Dear {{ customer.name }},\n\nwe have received your complaint no. "
            "{{ ref.complaint_id }}{% if ref.reference %} about {{ ref.reference }}{% endif %} "
            "and are working on it. We will write again when it is resolved." + _UNSUBSCRIBE_EN,
        ),
        Builtin(
            "complaints.acknowledged",
            "zh-CN",
            "service",
            "您的投诉（编号 {{ ref.complaint_id }}）已受理",
            "尊敬的{{ customer.name }}：\n\n我们已收到您的投诉（编号 {{ ref.complaint_id }}"
            "{% if ref.reference %}，涉及 {{ ref.reference }}{% endif %}），正在处理中，"
            "处理完毕后将再次通知您。" + _UNSUBSCRIBE_ZH,
        ),
        Builtin(
            "complaints.resolved",
            "en",
            "service",
            "Your complaint no. {{ ref.complaint_id }} is resolved",
            "Dear {{ customer.name }},\n\nyour complaint no. {{ ref.complaint_id }}"
            "{% if ref.reference %} about {{ ref.reference }}{% endif %} has been resolved. "
            "Thank you for your patience; tell us if anything is still wrong." + _UNSUBSCRIBE_EN,
        ),
        Builtin(
            "complaints.resolved",
            "zh-CN",
            "service",
            "您的投诉（编号 {{ ref.complaint_id }}）已处理完毕",
            "尊敬的{{ customer.name }}：\n\n您的投诉（编号 {{ ref.complaint_id }}"
            "{% if ref.reference %}，涉及 {{ ref.reference }}{% endif %}）已处理完毕。"
            "感谢您的耐心，如仍有问题请随时告诉我们。" + _UNSUBSCRIBE_ZH,
        ),
        Builtin(
            "activities.care",
            "en",
            "marketing",
            "{{ ref.subject }}",
            "Dear {{ customer.name }},\n\n{{ ref.subject }}\n\nWith best wishes." + _UNSUBSCRIBE_EN,
        ),
        Builtin(
            "activities.care",
            "zh-CN",
            "marketing",
            "{{ ref.subject }}",
            "亲爱的{{ customer.name }}：\n\n{{ ref.subject }}\n\n祝您一切顺利！" + _UNSUBSCRIBE_ZH,
        ),
    )
}


def ensure_builtin(connection: Connection, metadata: MetaData, name: str, now: datetime) -> None:
    """Store the built-in templates ``name`` (every locale) unless some version of it is stored.

    A deployment that saved its own template of that name in any locale keeps
    it; the built-in ones are stored only for a name that has none.
    """
    if stored_locales(connection, metadata, name):
        return
    rows = [
        {
            "name": b.name,
            "locale": b.locale,
            "version": 1,
            "purpose": b.purpose,
            "channel": None,
            "subject": b.subject,
            "body_text": b.text,
            "body_html": None,
            "created_at": now,
            "created_by": BUILTIN_AUTHOR,
        }
        for (stored, _), b in sorted(BUILTINS.items())
        if stored == name
    ]
    if not rows:
        return
    # Two transactions may both find none: the second's insert loses, harmlessly.
    savepoint = connection.begin_nested()
    try:
        connection.execute(insert(templates_table(metadata)), rows)
    except IntegrityError:
        savepoint.rollback()
    else:
        savepoint.commit()


__all__ = ["BUILTINS", "BUILTIN_AUTHOR", "Builtin", "ensure_builtin"]
