"""Operator-side PowerDNS calls for tests (zone creation), deliberately not through our provider."""

from __future__ import annotations

from typing import Any

import httpx2

from pdns_support.launcher import PdnsServer


def admin_client(server: PdnsServer) -> httpx2.Client:
    return httpx2.Client(
        base_url=f"{server.api_url}/api/v1/servers/localhost", headers={"X-API-Key": server.api_key}
    )


def create_zone(
    server: PdnsServer,
    name: str,
    *,
    kind: str = "Native",
    soa_edit_api: str = "INCREASE",
    rrsets: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Create a zone through the API the way an operator would (not through our provider)."""
    # An empty soa_edit_api really disables it; leaving the key out gives DEFAULT.
    body: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "nameservers": ["ns1.example.net."],
        "soa_edit_api": soa_edit_api,
    }
    if rrsets:
        body["rrsets"] = rrsets
    with admin_client(server) as admin:
        response = admin.post("/zones", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())
