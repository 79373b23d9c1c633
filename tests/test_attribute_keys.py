"""An attribute key cannot change a JSON path: keys with a double quote are refused everywhere."""

from __future__ import annotations

import pytest

from crmcore import CRM, ValidationError


def test_double_quote_in_an_attribute_key_is_refused(crm: CRM) -> None:
    with pytest.raises(ValidationError, match="attribute key 'a\"b' contains a double quote"):
        crm.customers.create({"name": "A", "attributes": {'a"b': "x"}})
    nested = crm.customers.create({"name": "B", "attributes": {"a": {"b": "x"}}})
    assert nested.id is not None
    with pytest.raises(ValidationError, match="contains a double quote"):
        crm.customers.update(nested.id, {"attributes": {'x"y': 1}})
    # Before the fix, on SQLite the key a"."b read the nested member a.b and matched B.
    with pytest.raises(ValidationError, match=r"attributes\.a\"\.\"b: attribute key"):
        crm.customers.search(attributes={'a"."b': "x"})
    assert [c.name for c in crm.customers.search(attributes={"a.b": "x"}).items] == []
    assert crm.customers.get(nested.id).attributes == {"a": {"b": "x"}}
