"""Accounts: contacts of organisations, hierarchy, typed links, account teams, relationship scores.

``crm.accounts`` is an :class:`AccountService` (docs/accounts.md is the guide).
Organisations and persons are both customers; this package relates them:

* **contacts** (``crm_contacts``): a person working at an organisation, with
  job title, department, a decision-chain ``role`` (``[accounts]
  contact_roles``), a ``primary`` flag (at most one per organisation) and
  start/end dates (:mod:`crmcore.model.accounts` defines *current*);
* **hierarchy** (``crm_account_parents``): each organisation has at most one
  parent organisation; cycles are refused;
* **links** (``crm_customer_links``): ``from_id -type-> to_id`` between any two
  customers (``[accounts] link_types``);
* **account team** (``crm_account_team``): users on our side with a role
  (``[accounts] team_roles``); members read the account and its current
  contacts, members in ``team_write_roles`` also write them, and so does the
  organisation's ``owner`` for its current contacts (:mod:`crmcore.access`);
* **relationship scores** (``crm_relationship_scores``): the six B2B
  dimensions, 0-100, per account and per decision maker, with history
  (:mod:`.scores`).

Every change to contacts, hierarchy, links or team is audited
(``account.<kind>.<action>``, one entry per customer concerned), published
as an ``account.relationship_changed`` event after commit, and announced in
the same transaction through ``crm_relationships_changed(ctx, changes)``:
one call per operation, one JSON-safe mapping per change, with ``kind``,
``action`` (``added``, ``updated`` or ``removed``) and, by kind:

``contact``
    ``contact_id`` (the ``crm_contacts`` row), ``person_id``,
    ``organisation_id``, ``role`` (code or null), ``primary`` (bool, after
    the change); ``updated`` adds ``changed``, the names of the fields that
    changed (``job_title``, ``department``, ``role``, ``primary``,
    ``start_date``, ``end_date``; a merge's ``person_id`` or
    ``organisation_id``). Making a contact primary also reports the previous
    primary contact as ``updated`` with ``changed == ["primary"]``. Ending
    a contact is an update of ``end_date``.
``parent``
    ``organisation_id`` (the subsidiary) and ``parent_id``; ``updated`` adds
    ``previous_parent_id``. ``removed`` carries the parent that was removed.
``link``
    ``link_id``, ``from_id``, ``to_id``, ``type``.
``team``
    ``account_id``, ``user``, ``role``; ``updated`` (a new role) adds
    ``previous_role``.

Relationship scores are audited (``account.scores.recorded``) but are not
relationship changes. Erasing a customer (:func:`erase_account_rows`)
reports the rows it removes; a merge (:func:`move_account_rows`) the rows it
moves or drops; deleting a customer removes its rows by cascade, reported
through ``crm_customers_deleted`` only.
"""

from crmcore.services.accounts.rows import (
    erase_account_rows,
    export_account_rows,
    move_account_rows,
)
from crmcore.services.accounts.service import AccountService

__all__ = ["AccountService", "erase_account_rows", "export_account_rows", "move_account_rows"]
