"""Field encryption at rest, blind indexes and the policy for rows that cannot be opened.

Access control itself (roles, ownership, grants, ``@requires``) and the audit
log are part of the kernel every service uses: :mod:`crmcore.access`,
:mod:`crmcore.scoping` and :mod:`crmcore.audit`.
"""
