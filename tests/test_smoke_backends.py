from crmcore import CRM


def test_both_backends_initialise(crm: CRM) -> None:
    assert crm.is_initialised()
    assert crm.pending_migrations() == set()
    created = crm.customers.create({"name": "Ada"})
    assert crm.customers.get(created.id) == created
