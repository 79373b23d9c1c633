"""The web application of docs/embedding.md, run through Flask's test client on both backends."""

from __future__ import annotations

import importlib.util
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from crmcore import CRM, ConflictError, NotFoundError, PluginError, StorageError, ValidationError
from crmcore.access import AccessDeniedError
from crmcore.errors import DeliveryError
from crmcore.http import http_status

EXAMPLE = Path(__file__).parents[1] / "examples" / "webapp" / "crm_webapp.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crm_webapp", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["crm_webapp"] = module
    spec.loader.exec_module(module)
    return module


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def client(crm: CRM) -> Any:
    app = load_example().create_app(crm)
    app.testing = True
    return app.test_client()


def test_each_request_acts_as_its_user(client: Any) -> None:
    admin, alice, meg = auth("token-admin"), auth("token-alice"), auth("token-meg")
    mine = client.post(
        "/customers",
        json={"name": "Ada", "email": "ada@example.com", "owner": "alice"},
        headers=admin,
    )
    theirs = client.post("/customers", json={"name": "Bea", "owner": "bob"}, headers=admin)
    assert mine.status_code == theirs.status_code == 201
    ada, bea = mine.get_json()["id"], theirs.get_json()["id"]

    assert client.get("/customers", headers=alice).get_json()["total"] == 1
    assert client.get(f"/customers/{ada}", headers=alice).status_code == 200
    assert client.get(f"/customers/{bea}", headers=alice).status_code == 403
    recorded = client.post(
        f"/customers/{ada}/interactions",
        headers=alice,
        json={"kind": "call", "occurred_at": "2026-01-02T10:00:00Z"},
    )
    assert recorded.status_code == 201
    refused = client.post(
        f"/customers/{bea}/interactions",
        headers=alice,
        json={"kind": "call", "occurred_at": "2026-01-02T10:00:00Z"},
    )
    assert refused.status_code == 403 and refused.get_json()["error"] == "AccessDeniedError"

    bad = client.post("/customers", json={"name": "Cy", "email": "not-an-email"}, headers=admin)
    assert bad.status_code == 422 and bad.get_json()["field"] == "email"
    dup = client.post(
        "/customers", json={"name": "A. L.", "email": "ADA@example.com"}, headers=admin
    )
    assert dup.status_code == 409
    assert client.get("/customers/999", headers=admin).status_code == 404
    assert client.get("/customers", headers=auth("nope")).status_code == 401

    # The audit log names who acted, as the application authenticated them.
    entries = client.get("/audit", headers=meg).get_json()
    assert {"actor": "alice", "action": "interaction.record", "customer_id": ada} in entries
    assert client.get("/audit", headers=alice).status_code == 403


def test_one_crm_serves_concurrent_request_threads(client: Any) -> None:
    admin = auth("token-admin")

    def create(n: int) -> int:
        return int(
            client.post(
                "/customers", json={"name": f"P{n}", "email": f"p{n}@example.com"}, headers=admin
            ).status_code
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(create, range(40)))
    assert statuses == [201] * 40
    assert client.get("/customers?limit=100", headers=admin).get_json()["total"] == 40


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (AccessDeniedError("no"), 403),
        (NotFoundError("gone"), 404),
        (ConflictError("twice"), 409),
        (ValidationError("bad", field="x"), 422),
        (DeliveryError("broker down"), 502),
        (StorageError("db down"), 503),
        (PluginError("broken"), 500),
    ],
)
def test_http_status_of_each_error(error: Exception, status: int) -> None:
    assert http_status(error) == status  # type: ignore[arg-type]
