"""Segment rules on ``customer.email`` match with encryption off, on, and mid-rotation."""

from __future__ import annotations

import crmcore_segmentation.plugin
import pytest
from crmcore_segmentation import segments

from crmcore import ValidationError
from crmcore.security.encryption import INDEX_KEY_ENV, KEY_ENV, OLD_KEYS_ENV, new_key


def members(crm, key, rule):
    segments.define_segment(crm, key, rule)
    return [m["customer_id"] for m in segments.segment_members(crm, key)]


def test_email_rules_match_whatever_form_the_key_is_stored_in(crm_factory, monkeypatch):
    for name in (KEY_ENV, OLD_KEYS_ENV, INDEX_KEY_ENV):
        monkeypatch.delenv(name, raising=False)
    plain = crm_factory(plugins=[crmcore_segmentation.plugin])
    ada = plain.customers.create({"name": "Ada", "email": "Ada@X.org"})
    assert members(plain, "a0", {"field": "customer.email", "op": "eq", "value": "ada@x.org"})
    monkeypatch.setenv(KEY_ENV, new_key())
    crm = crm_factory(plugins=[crmcore_segmentation.plugin])
    bob = crm.customers.create({"name": "Bob", "email": "bob@x.org"})  # sealed and indexed
    noone = crm.customers.create({"name": "No email"})
    both = {"field": "customer.email", "op": "in", "value": [" ADA@x.org", "bob@X.org"]}
    assert members(crm, "both", both) == [ada.id, bob.id]  # plaintext row and indexed row
    assert members(crm, "bob", {"field": "customer.email", "op": "eq", "value": "bob@x.org"}) == [
        bob.id
    ]
    assert members(
        crm, "not_bob", {"field": "customer.email", "op": "ne", "value": "bob@x.org"}
    ) == [ada.id]
    assert members(crm, "none", {"field": "customer.email", "op": "not_exists"}) == [noone.id]
    with pytest.raises(ValidationError, match="cannot compare encrypted emails"):
        segments.define_segment(crm, "lt", {"field": "customer.email", "op": "lt", "value": "m"})
    with pytest.raises(ValidationError, match=r"rule: customer\.email: not a valid email"):
        segments.define_segment(crm, "bad", {"field": "customer.email", "op": "eq", "value": "x"})
    assert crm.customers.rotate_encryption() == 1
    assert members(crm, "both2", both) == [ada.id, bob.id]
