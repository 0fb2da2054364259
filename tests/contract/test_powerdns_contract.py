"""Every request the PowerDNS provider sends is one the PowerDNS 4.7 API spec describes.

The provider runs a realistic workload (zone listing, test connection, single and batched writes into
classless, parent and ip6.arpa zones, deletes, NOTIFY) against a real pdns_server through a transport
that records each request and response. Each request must match a path template and method of
``../shared/specs/powerdns-4.7-api-swagger.yaml``, use only declared query parameters, put zone ids in a
single path segment (``=2F``, never a raw ``/``, the bug behind broken ``/notify`` calls), and carry a
body valid against the operation's body schema; JSON responses are checked against the response schema.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx2
import jsonschema
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from pdns_support.admin import create_zone
from pdns_support.launcher import PdnsServer

from conftest import require_shared
from vpsbridge.core.ipam import find_zone
from vpsbridge.dns.powerdns import PowerDnsProvider
from vpsbridge.dns.records import Change

pytest_plugins = ["pdns_support.fixtures"]

SPEC = "specs/powerdns-4.7-api-swagger.yaml"


class RecordingTransport(httpx2.AsyncBaseTransport):
    def __init__(self) -> None:
        self.inner = httpx2.AsyncHTTPTransport()
        self.exchanges: list[tuple[httpx2.Request, int, bytes]] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        self.exchanges.append((request, response.status_code, body))
        return httpx2.Response(response.status_code, headers=response.headers, content=body, request=request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Spec:
    def __init__(self, document: dict[str, Any]) -> None:
        self.doc = document
        self.base = document["basePath"]
        self.templates = []
        for template, operations in document["paths"].items():
            pattern = "^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$"
            self.templates.append((re.compile(pattern), template, operations))

    def operation(self, method: str, raw_path: str) -> tuple[str, dict[str, Any]]:
        assert raw_path.startswith(self.base), raw_path
        path = raw_path[len(self.base) :]
        matches = [(t, ops) for pattern, t, ops in self.templates if pattern.match(path)]
        assert matches, f"{method} {path}: no path in the spec (a raw '/' in a zone id would do this)"
        template, operations = matches[0]
        assert method.lower() in operations, f"{method} {template} is not in the spec"
        return template, operations[method.lower()]

    def schema(self, schema: dict[str, Any], *, relax: tuple[str, ...] = ()) -> dict[str, Any]:
        """``schema`` with the spec's definitions; ``relax`` drops RRSet fields from ``required``.

        Two quirks of the 4.7 spec need it: ``ttl`` is required but MUST NOT be sent with changetype
        DELETE, and ``changetype`` is required although the server never returns it in zone reads.
        """
        definitions = copy.deepcopy(self.doc["definitions"])
        definitions["RRSet"]["required"] = [r for r in definitions["RRSet"]["required"] if r not in relax]
        return {**schema, "definitions": definitions}


def check_request(spec: Spec, request: httpx2.Request) -> str:
    raw_path = urlsplit(str(request.url)).path
    template, operation = spec.operation(request.method, raw_path)
    declared = {p["name"]: p for p in operation.get("parameters", []) if p.get("in") == "query"}
    for name, value in request.url.params.multi_items():
        assert name in declared, f"{request.method} {template}: undeclared query parameter {name!r}"
        if declared[name].get("type") == "boolean":
            assert value in ("true", "false")
    if "{zone_id}" in template:
        zone_segment = raw_path.split("/zones/", 1)[1].split("/", 1)[0]
        assert "%" not in zone_segment, zone_segment  # =XX, not %XX (proxies decode %2F)
        assert re.fullmatch(r"[A-Za-z0-9.\-]*(=[0-9A-F]{2}[A-Za-z0-9.\-]*)*", zone_segment), zone_segment
    body_params = [p for p in operation.get("parameters", []) if p.get("in") == "body"]
    if request.content:
        assert body_params, f"{request.method} {template} takes no body"
        body = json.loads(request.content)
        schema = body_params[0]["schema"]
        jsonschema.Draft4Validator(spec.schema(schema, relax=("ttl",))).validate(body)
        for rrset in body.get("rrsets", []):
            if rrset["changetype"].upper() == "DELETE":
                assert "ttl" not in rrset
                assert not rrset.get("records")
            else:
                assert rrset["changetype"] == "REPLACE"
                assert isinstance(rrset["ttl"], int)
                assert rrset["name"].endswith(".")
                for record in rrset["records"]:
                    if rrset["type"] in ("PTR", "CNAME", "NS"):
                        assert record["content"].endswith(".")
    return template


def check_response(spec: Spec, request: httpx2.Request, status: int, body: bytes) -> None:
    _, operation = spec.operation(request.method, urlsplit(str(request.url)).path)
    assert str(status) in operation["responses"], f"{request.method} {request.url}: undocumented {status}"
    schema = operation["responses"][str(status)].get("schema")
    if schema and body.strip():
        jsonschema.Draft4Validator(spec.schema(schema, relax=("changetype",))).validate(json.loads(body))


async def test_requests_match_the_powerdns_spec(pdns: PdnsServer) -> None:
    spec = Spec(yaml.safe_load(require_shared(SPEC).read_text()))
    for name in ("2.0.192.in-addr.arpa.", "0/26.2.0.192.in-addr.arpa.", "64/64.2.0.192.in-addr.arpa."):
        create_zone(pdns, name)
    create_zone(pdns, "8.b.d.0.1.0.0.2.ip6.arpa.", kind="Master")
    transport = RecordingTransport()
    provider = PowerDnsProvider.from_config(
        url=pdns.api_url,
        credentials={"api_key": pdns.api_key},
        settings={"zone_cache_seconds": 0},
        transport=transport,
    )
    try:
        report = await provider.test_connection()
        assert report.ok
        names = await provider.zone_names()
        batches: dict[str, list[Change]] = {}
        for ip in ("192.0.2.10", "192.0.2.11", "192.0.2.70", "192.0.2.200", "2001:db8::1"):
            zone, owner = find_zone(ip, names) or ("", "")
            batches.setdefault(zone, []).append(
                Change.replace(owner, "PTR", "vps.example.com", comment="svc 1")
            )
        for zone, changes in batches.items():
            assert (await provider.apply(zone, changes)).ok
        await provider.get_rrset("0/26.2.0.192.in-addr.arpa.", "10.0/26.2.0.192.in-addr.arpa.", "PTR")
        await provider.apply(
            "0/26.2.0.192.in-addr.arpa.", [Change.delete("10.0/26.2.0.192.in-addr.arpa.", "PTR")]
        )
        await provider.notify("64/64.2.0.192.in-addr.arpa.")
    finally:
        await provider.aclose()

    templates = set()
    for request, status, body in transport.exchanges:
        templates.add((request.method, check_request(spec, request)))
        check_response(spec, request, status, body)
    # The workload really exercised every kind of call the provider makes.
    assert templates >= {
        ("GET", "/servers/{server_id}"),
        ("GET", "/servers/{server_id}/zones"),
        ("GET", "/servers/{server_id}/zones/{zone_id}"),
        ("PATCH", "/servers/{server_id}/zones/{zone_id}"),
        ("PUT", "/servers/{server_id}/zones/{zone_id}/notify"),
    }
    notify_paths = [
        unquote(str(r.url.path)) for r, _, _ in transport.exchanges if r.url.path.endswith("/notify")
    ]
    assert any("0=2F26" in p for p in notify_paths)
    assert any("64=2F64" in p for p in notify_paths)


def test_spec_checker_rejects_a_raw_slash_and_a_dotless_ptr() -> None:
    """The checks above can fail: feed them the requests older clients really sent."""
    spec = Spec(yaml.safe_load(require_shared(SPEC).read_text()))
    base = "http://pdns/api/v1/servers/localhost/zones/"
    raw = httpx2.Request("PUT", base + "0/26.2.0.192.in-addr.arpa./notify")
    with pytest.raises(AssertionError, match="no path in the spec"):
        check_request(spec, raw)
    lower = httpx2.Request("PUT", base + "0=2f26.2.0.192.in-addr.arpa./notify")
    with pytest.raises(AssertionError):
        check_request(spec, lower)
    body = {
        "rrsets": [
            {
                "name": "10.0/26.2.0.192.in-addr.arpa.",
                "type": "PTR",
                "ttl": 300,
                "changetype": "REPLACE",
                "records": [{"content": "vps.example.com", "disabled": False}],
            }
        ]
    }
    dotless = httpx2.Request("PATCH", base + "0=2F26.2.0.192.in-addr.arpa.", json=body)
    with pytest.raises(AssertionError):
        check_request(spec, dotless)
    body["rrsets"][0]["ttl"] = "300"
    bad_type = httpx2.Request("PATCH", base + "0=2F26.2.0.192.in-addr.arpa.", json=body)
    with pytest.raises(jsonschema.ValidationError):
        check_request(spec, bad_type)
