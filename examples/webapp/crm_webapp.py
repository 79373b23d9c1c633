"""A small web application embedding crmcore (Flask), as docs/embedding.md describes.

One ``CRM`` per process, shared by every request thread; each request acts
through ``crm.as_user(principal)`` for the user it authenticated, so
crmcore's access control and audit log see the real user. Errors become
HTTP statuses with :func:`crmcore.http.http_status`.

Authentication here is a fixed token table, to keep the example short: a
real application checks a session, an OAuth token or an API key instead.

Run it: ``CRM_DATABASE_URL=sqlite:///crm.db flask --app crm_webapp:create_app run``.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, abort, g, jsonify, request

from crmcore import CRM, CRMError, to_dict
from crmcore.access import Principal, Role
from crmcore.http import http_status

#: token -> (user, role). Stand-in for the application's own authentication.
TOKENS = {
    "token-admin": ("root", Role.ADMIN),
    "token-alice": ("alice", Role.AGENT),
    "token-bob": ("bob", Role.AGENT),
    "token-meg": ("meg", Role.MANAGER),
}


def create_app(crm: CRM | None = None) -> Flask:
    """The application; ``crm`` defaults to one opened from ``CRM_DATABASE_URL``."""
    app = Flask(__name__)
    shared = crm or CRM.open(os.environ.get("CRM_DATABASE_URL", "sqlite:///crm.db"), upgrade=True)

    @app.before_request
    def authenticate() -> None:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if token not in TOKENS:
            abort(401)
        user, role = TOKENS[token]
        g.crm = shared.as_user(Principal(user, role))  # cheap: a view sharing the engine

    @app.errorhandler(CRMError)
    def crm_error(error: CRMError) -> tuple[Any, int]:
        body: dict[str, Any] = {"error": type(error).__name__, "message": str(error)}
        field = getattr(error, "field", None)
        if field is not None:
            body["field"] = field
        return jsonify(body), http_status(error)

    @app.get("/customers")
    def list_customers() -> Any:
        page = g.crm.customers.search(
            email=request.args.get("email"),
            limit=request.args.get("limit", 50, type=int),
            offset=request.args.get("offset", 0, type=int),
        )
        return jsonify({"total": page.total, "items": [to_dict(c) for c in page.items]})

    @app.get("/customers/<int:customer_id>")
    def show_customer(customer_id: int) -> Any:
        return jsonify(to_dict(g.crm.customers.get(customer_id)))

    @app.post("/customers")
    def create_customer() -> Any:
        created = g.crm.customers.create(request.get_json(force=True))
        return jsonify(to_dict(created)), 201

    @app.post("/customers/<int:customer_id>/interactions")
    def record_interaction(customer_id: int) -> Any:
        data = {**request.get_json(force=True), "customer_id": customer_id}
        recorded = g.crm.interactions.record(data)
        return jsonify(to_dict(recorded)), 201

    @app.get("/audit")
    def audit() -> Any:
        page = g.crm.audit.query(limit=request.args.get("limit", 20, type=int))
        return jsonify(
            [
                {"actor": e.actor, "action": e.action, "customer_id": e.customer_id}
                for e in page.items
            ]
        )

    return app
