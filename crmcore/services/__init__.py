"""Core's services: customers, interactions, lifecycle, erasure, key rotation and schema.

Each service is reached through the :class:`crmcore.CRM` facade
(``crm.customers``, ``crm.interactions``, ``crm.lifecycle``); services depend
on the kernel (unit of work, hooks, access, audit, events) and on storage,
never on each other's private members.
"""
