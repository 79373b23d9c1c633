"""Distribution: invite customers chosen by filter, or a random or stratified sample.

Customers without the ``consent.surveys`` flag are never invited (the result counts
them), nor are customers already invited to any version of the survey. Each
invitation gets a unique, unguessable token; a response may be recorded once per
invitation.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from attrs import frozen
from sqlalchemy import exists, insert, literal, select

from crmcore import CRM, Channel, NotFoundError, UnitOfWork, ValidationError
from crmcore.access import Action
from crmcore.scoping import enforce_declared, requires
from crmcore.storage.ids import allocate_ids
from crmcore_surveys.catalog import latest_row, survey_by_id
from crmcore_surveys.population import field_expression, filter_conditions
from crmcore_surveys.settings import settings_of
from crmcore_surveys.tables import invitations_table, surveys_table

_CHUNK = 400


@frozen
class Invitation:
    """One invitation sent."""

    id: int
    customer_id: int
    token: str
    stratum: str | None = None


@frozen
class InvitationResult:
    """What :func:`invite` did.

    ``matched`` customers met the filters; ``skipped_no_consent`` of them lack
    ``consent.surveys``; ``already_invited`` hold an invitation to the survey;
    ``eligible`` is what was left to sample from; ``invitations`` were sent.
    """

    survey_key: str
    survey_version: int
    channel: str
    matched: int
    skipped_no_consent: int
    already_invited: int
    eligible: int
    invitations: tuple[Invitation, ...]
    allocation: Mapping[str, int]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (without the tokens)."""
        return {
            "survey": self.survey_key,
            "version": self.survey_version,
            "channel": self.channel,
            "matched": self.matched,
            "skipped_no_consent": self.skipped_no_consent,
            "already_invited": self.already_invited,
            "eligible": self.eligible,
            "invited": len(self.invitations),
            "allocation": dict(self.allocation),
        }


def proportional_allocation(sizes: Mapping[str, int], n: int) -> dict[str, int]:
    """Split a sample of ``n`` over strata proportionally to their ``sizes``.

    Largest-remainder (Hamilton) rounding: each stratum gets ``floor(n * N_h / N)``,
    the leftover units go to the largest fractional parts (ties: stratum label order).
    Never more than a stratum holds; ``n >= N`` takes everyone.
    """
    total = sum(sizes.values())
    if n >= total:
        return dict(sizes)
    quotas = {h: n * size / total for h, size in sizes.items()}
    allocation = {h: int(q) for h, q in quotas.items()}
    left = n - sum(allocation.values())
    for h in sorted(quotas, key=lambda h: (-(quotas[h] - allocation[h]), h))[:left]:
        allocation[h] += 1
    return allocation


def _channel(value: str) -> str:
    try:
        return Channel(value).value
    except ValueError:
        allowed = ", ".join(c.value for c in Channel)
        raise ValidationError(
            f"channel: {value!r} is not one of: {allowed}", field="channel"
        ) from None


@requires(Action.WRITE, scoped=True)  # guards named ids, scopes the population
def invite(
    crm: CRM,
    key: str,
    *,
    customer_ids: Iterable[int] | None = None,
    filters: Mapping[str, Any] | None = None,
    sample: int | None = None,
    strata: str | None = None,
    seed: int | None = None,
    channel: str | None = None,
    sent_at: datetime | None = None,
    actor: str | None = None,
    ctx: UnitOfWork | None = None,
) -> InvitationResult:
    """Invite customers to the latest version of survey ``key``; one transaction.

    The population is every customer matching ``filters`` (see
    :func:`crmcore_surveys.population.filter_conditions`), restricted to
    ``customer_ids`` when given. Customers without survey consent or already
    invited are left out and counted. ``sample`` draws that many at random
    (``random.Random(seed)``); with ``strata`` (a customer field or
    ``attributes.<key>``) the sample is stratified with proportional allocation.
    ``sent_at`` (aware, not in the future; default now) stamps the invitations:
    an invitation sent earlier by another system, or backdated data such as the
    demo's. Raises NotFoundError for an unknown survey or customer id,
    ValidationError for a bad option.
    """
    if sample is not None and sample < 1:
        raise ValidationError(f"sample: must be at least 1, got {sample}", field="sample")
    if strata is not None and sample is None:
        raise ValidationError("strata: needs a sample size", field="strata")
    chosen_channel = _channel(channel or settings_of(crm).default_channel)
    metadata = crm.metadata
    customers = metadata.tables["crm_customers"]
    tags = metadata.tables["crm_customer_tags"]
    invitations = invitations_table(metadata)
    surveys = surveys_table(metadata)
    ids = None if customer_ids is None else sorted(set(customer_ids))
    with crm.unit_of_work(actor, ctx) as uow:
        sent = _sent_at(sent_at, uow.now)
        row = latest_row(uow.connection, crm, key)
        if row is None:
            raise NotFoundError(f"survey: no survey {key!r}")
        survey = survey_by_id(uow.connection, crm, row.id)
        if ids is not None:
            crm.access.guard(uow, ids, Action.WRITE)
            missing = sorted(set(ids) - crm.customers.exists(ids, ctx=uow))
            if missing:
                raise NotFoundError(f"customer_ids: customer {missing[0]} does not exist")
        invited = exists(
            select(1)
            .select_from(invitations.join(surveys, surveys.c.id == invitations.c.survey_id))
            .where(invitations.c.customer_id == customers.c.id, surveys.c.key == key)
        )
        stratum = (
            field_expression(customers, strata, "strata") if strata is not None else literal(None)
        )
        base = select(
            customers.c.id,
            customers.c.consent_surveys.label("consent"),
            invited.label("invited"),
            stratum.label("stratum"),
        ).where(
            *filter_conditions(customers, tags, filters),
            # The population is what the acting user may write: filters see nothing else.
            crm.access.where(customers.c.id, Action.WRITE, ctx=uow),
        )
        rows: list[Any] = []
        if ids is None:
            rows = list(uow.connection.execute(base.order_by(customers.c.id)))
        else:
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                rows.extend(uow.connection.execute(base.where(customers.c.id.in_(chunk))))
            rows.sort(key=lambda r: r.id)
        no_consent = sum(1 for r in rows if not r.consent)
        already = sum(1 for r in rows if r.consent and r.invited)
        eligible = [r for r in rows if r.consent and not r.invited]
        picked, allocation = _pick(eligible, sample, strata is not None, seed)
        new_ids = allocate_ids(uow.connection, invitations, len(picked))
        made = [
            Invitation(id=new_id, customer_id=cid, token=secrets.token_urlsafe(18), stratum=label)
            for new_id, (cid, label) in zip(new_ids, picked, strict=True)
        ]
        if made:
            uow.connection.execute(
                insert(invitations),
                [
                    {
                        "id": inv.id,
                        "survey_id": survey.id,
                        "customer_id": inv.customer_id,
                        "token": inv.token,
                        "channel": chosen_channel,
                        "status": "sent",
                        "stratum": inv.stratum,
                        "sent_at": sent,
                    }
                    for inv in made
                ],
            )
            crm.audit.record_batch(
                uow,
                "surveys.invite",
                "survey_invitation",
                [(inv.id, inv.customer_id, {"survey": survey.key}) for inv in made],
            )
            crm.call_hook(
                "surveys_invitations_created",
                ctx=uow,
                invitations=[
                    {
                        "invitation_id": inv.id,
                        "customer_id": inv.customer_id,
                        "token": inv.token,
                        "survey_key": survey.key,
                        "survey_version": survey.version,
                        "survey_title": survey.title,
                        "channel": chosen_channel,
                        "sent_at": sent,
                    }
                    for inv in made
                ],
            )
    return InvitationResult(
        survey_key=survey.key,
        survey_version=survey.version,
        channel=chosen_channel,
        matched=len(rows),
        skipped_no_consent=no_consent,
        already_invited=already,
        eligible=len(eligible),
        invitations=tuple(made),
        allocation=allocation,
    )


def _sent_at(value: datetime | None, now: datetime) -> datetime:
    if value is None:
        return now
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(
            f"sent_at: must be a timezone-aware datetime, got {value!r}", field="sent_at"
        )
    if value > now:
        raise ValidationError(f"sent_at: {value.isoformat()} is in the future", field="sent_at")
    return value


def _label(value: Any) -> str:
    return "(none)" if value is None else str(value)


def _pick(
    eligible: Sequence[Any], sample: int | None, stratified: bool, seed: int | None
) -> tuple[list[tuple[int, str | None]], dict[str, int]]:
    """The (customer id, stratum) pairs to invite, and the per-stratum allocation."""
    rng = random.Random(seed)
    if sample is None:
        return [(r.id, None) for r in eligible], {"(all)": len(eligible)}
    if not stratified:
        ids = [r.id for r in eligible]
        chosen = sorted(rng.sample(ids, min(sample, len(ids))))
        return [(cid, None) for cid in chosen], {"(all)": len(chosen)}
    groups: dict[str, list[int]] = {}
    for r in eligible:
        groups.setdefault(_label(r.stratum), []).append(r.id)
    allocation = proportional_allocation({h: len(v) for h, v in groups.items()}, sample)
    picked: list[tuple[int, str | None]] = []
    for label in sorted(groups):
        picked.extend((cid, label) for cid in sorted(rng.sample(groups[label], allocation[label])))
    picked.sort()
    return picked, dict(sorted(allocation.items()))


# A public service function added without @requires refuses every user's view.
enforce_declared(__name__)
