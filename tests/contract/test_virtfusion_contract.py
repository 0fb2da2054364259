"""Contract: every request the driver sends and every answer the simulator gives, checked against
``../shared/specs/virtfusion-openapi.yaml``.

Requests: the method and path must be an operation of the spec, query parameters must be declared
(``page`` is allowed where ``results`` is - Laravel's paginator, whose links the spec's examples
show), and JSON bodies must match the operation's request schema *with no undeclared fields*
(that is how ``cpuCores`` instead of ``cores`` would be caught).

Responses: the spec gives examples rather than schemas for most answers, so a schema is derived from
each example: every key of the example is required, with the example's JSON type (integers and
floats are both "number"; ``null`` and ``[]`` accept anything; objects keyed by numbers are maps).
Success statuses must be the documented one. Errors the spec does not document (403/404/423/429)
must use the envelope the API uses: ``{"msg": str}`` or ``{"errors": [str]}``.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

import httpx2
import jsonschema
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))

from test_virtfusion_driver import KEY, built_server, finish
from virtfusion_support import make_driver, make_sim, spec

from conftest import require_shared
from vpsbridge.sim.virtfusion import Fault

SPEC_PATH = "specs/virtfusion-openapi.yaml"
#: Places where the spec's own examples of the same server object disagree, so anything goes there:
#: ``settings.config`` is an object in ``GET /servers/{id}`` and ``[]`` in ``POST /servers``; ``built``
#: and ``hostname`` are ``null`` in ``POST /servers`` but strings in the build example (a rebuild);
#: ``qemuAgent`` and ``remoteState`` depend on the guest; the queue example shows a finished task, a
#: running one has ``finished: null``.
LOOSE = {
    # The self-service report example is an empty month, where every total is ``false``; a month with
    # hourly usage has numbers there (hourlyStats' example writes the same totals as number/string).
    "data.usage.serversTotal",
    "data.usage.monthlyTotal",
    "data.settings.config",
    "data.qemuAgent",
    "data.remoteState",
    "data.built",
    "data.hostname",
    "data.finished",
}
ERROR_ENVELOPE = {
    "oneOf": [
        {"type": "object", "required": ["msg"], "properties": {"msg": {"type": "string"}}},
        {
            "type": "object",
            "required": ["errors"],
            "properties": {"errors": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
        },
    ]
}


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return yaml.safe_load(require_shared(SPEC_PATH).read_text(encoding="utf-8"))


def derive(example: Any, where: str = "") -> dict[str, Any]:
    """A JSON schema that accepts what the example shows: its keys required, its types enforced."""
    if where in LOOSE or example is None:
        return {}
    if isinstance(example, bool):
        return {"type": "boolean"}
    if isinstance(example, int | float):
        return {"type": "number"}
    if isinstance(example, str):
        return {"type": "string"}
    if isinstance(example, list):
        if not example:
            return {"type": ["array", "object"]}  # PHP encodes an empty map as []
        items = [derive(item, where + "[]") for item in example]
        merged = items[0]
        if all(i.get("type") == "object" for i in items):
            required = set(merged.get("required", []))
            for other in items[1:]:
                required &= set(other.get("required", []))
            merged = {**merged, "required": sorted(required)}
        return {"type": "array", "items": merged}
    assert isinstance(example, dict)
    if example and all(re.fullmatch(r"\d+", k) for k in example):
        return {"type": "object", "additionalProperties": derive(next(iter(example.values())), where + ".*")}
    return {
        "type": "object",
        "required": sorted(example),
        "properties": {k: derive(v, f"{where}.{k}".lstrip(".")) for k, v in example.items()},
    }


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The request schema with ``additionalProperties: false`` on every object (no invented fields)."""
    out = copy.deepcopy(schema)
    if out.get("type") == "object" and "properties" in out:
        out.setdefault("additionalProperties", False)
        out["properties"] = {k: strict(v) for k, v in out["properties"].items()}
    if out.get("type") == "array" and isinstance(out.get("items"), dict):
        out["items"] = strict(out["items"])
    return out


class Operations:
    def __init__(self, openapi: dict[str, Any]) -> None:
        self.spec = openapi
        self.routes: list[tuple[re.Pattern[str], str]] = []
        for path in openapi["paths"]:
            regex = "^" + re.sub(r"\\\{[^}]+\\\}", r"[^/]+", re.escape(path)) + "$"
            self.routes.append((re.compile(regex), path))
        # literal paths first, so /servers/user/{id} never matches /servers/{id}/...
        self.routes.sort(key=lambda r: r[1].count("{"))

    def find(self, method: str, url: httpx2.URL) -> tuple[str, dict[str, Any]]:
        path = url.path.split("/api/v1", 1)[1]
        for regex, template in self.routes:
            if regex.match(path) and method.lower() in self.spec["paths"][template]:
                return template, self.spec["paths"][template][method.lower()]
        raise AssertionError(f"{method} {path} is not an operation of the VirtFusion spec")


def check_request(ops: Operations, request: httpx2.Request) -> str:
    template, op = ops.find(request.method, request.url)
    declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
    if "results" in declared:
        declared.add("page")
    undeclared = set(request.url.params.keys()) - declared
    assert not undeclared, f"{request.method} {template}: undeclared query parameters {undeclared}"
    for name, value in request.url.params.items():
        param = next(p for p in op["parameters"] if p["name"] == name) if name != "page" else None
        if param and param.get("schema", {}).get("type") == "boolean":
            assert value in ("true", "false"), f"{template}: {name}={value!r} is not a boolean"
        if param and param.get("schema", {}).get("type") == "integer":
            assert re.fullmatch(r"-?\d+", value), f"{template}: {name}={value!r} is not an integer"
    if request.content:
        body_spec = op.get("requestBody", {}).get("content", {}).get("application/json")
        assert body_spec, f"{request.method} {template} takes no JSON body"
        jsonschema.validate(json.loads(request.content), strict(body_spec["schema"]))
    elif request.method in ("POST", "PUT") and op.get("requestBody"):
        required = op["requestBody"]["content"].get("application/json", {}).get("schema", {}).get("required")
        assert not required, f"{request.method} {template} requires a body with {required}"
    return f"{request.method} {template}"


def check_response(ops: Operations, request: httpx2.Request, status: int, body: bytes, headers: Any) -> None:
    template, op = ops.find(request.method, request.url)
    documented = op["responses"]
    if status >= 400:
        if str(status) in documented:
            answer = documented[str(status)]
            if "$ref" in answer:  # "#/components/responses/401"
                answer = ops.spec["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
            content = answer.get("content", {})
            if "application/octet-stream" in content:  # 401: the spec's plain-text body
                example = next(iter(content["application/octet-stream"].get("examples", {}).values()))
                assert body.decode() == example["value"]
                return
            jsonschema.validate(json.loads(body), derive(content["application/json"]["example"]))
            return
        assert status in (403, 404, 423, 429), f"{template}: undocumented error status {status}"
        jsonschema.validate(json.loads(body), ERROR_ENVELOPE)
        if status == 429:
            assert headers.get("retry-after")
        return
    success = [code for code in documented if code.startswith("2")]
    assert str(status) in success, f"{request.method} {template}: answered {status}, spec says {success}"
    content = documented[str(status)].get("content", {})
    example = content.get("application/json", {}).get("example")
    if example is None:
        assert not body.strip(), f"{template}: the spec documents no body for {status}"
        return
    if "dryRun=true" in str(request.url):
        return  # the spec documents only the real creation's answer
    jsonschema.validate(json.loads(body), derive(example))


async def exercise_everything(driver: Any, state: Any) -> None:
    """Drive every operation the driver has, including the failing paths."""
    await driver.test_connection()
    await driver.validate(spec())
    done = await built_server(
        driver,
        ssh_keys=(KEY,),
        extra={
            "package_id": 2,
            "swap": 1,
            "user": {"name": "Ada", "email": "ada@example.net"},
            "options": {
                "Memory": "2",
                "CPU Cores": "2",
                "Storage": "60",
                "Bandwidth": "500",
                "Inbound Network Speed": "1000",
                "Outbound Network Speed": "1000",
                "Network Type": "0",
                "Storage Type": "0",
                "Firewall Rulesets": "1,2",
                "Additional Storage": "10",
                "Additional Storage Type": "0",
            },
        },
    )
    ref = done.server
    await driver.server_info(ref)
    await driver.server_info(ref, live=True)
    await finish(driver, await driver.power(ref, "restart"))
    await driver.suspend(ref)
    await driver.unsuspend(ref)
    await driver.change_package(
        ref, spec(extra={"package_id": 3, "options": {"Memory": "6", "CPU Cores": "5", "Bandwidth": "0"}})
    )
    reset = await driver.reset_password(ref, send_mail=False)
    await finish(driver, reset.task)
    await driver.rename(ref, "web1.example.net", name="Renamed")
    await driver.traffic(ref)
    await driver.console(ref)
    await driver.client.vnc(int(ref.external_id))
    await driver.os_templates({"package_id": 1})
    await driver.backups(ref)
    await driver.capacity({"hypervisor_group_id": 1})
    await driver.package(1)
    await driver.client.packages()
    await driver.client.hypervisor_groups()
    await driver.client.hypervisor_group(1)
    await driver.client.ssh_keys_for_user(1)
    await driver.sso_url(42, ref)
    await driver.reset_panel_login(42)
    await driver.add_credit(42, 5, reference=77, note="Invoice 77")
    await driver.credit_balance(42)
    await driver.self_service_usage(42, range_="m")
    await driver.self_service_report(42, period=1)
    for user in state.users.values():
        if user.ext_relation_id == 42:
            user.self_service = 1  # hourly: the same calls with usage in them
    await driver.hourly_usage(42)
    await driver.usage_report(42)
    await driver.credit_balance(42)
    await driver.add_traffic_block(ref, 50)
    blocks = await driver.traffic_blocks(ref)
    await driver.remove_traffic_block(ref, blocks["assigned"][0]["id"])
    await driver.add_ipv4(ref, 1)
    await driver.remove_ipv4_quantity(ref, 1)
    rebuild = await driver.build(ref, "4", hostname="web2.example.net")
    with pytest.raises(Exception):  # noqa: B017,PT011 - locked while building: a 423
        await driver.suspend(ref)
    await finish(driver, rebuild)
    state.faults = [Fault(kind="rate_limit", path="/packages/1", seconds=0, times=5)]
    with pytest.raises(Exception):  # noqa: B017,PT011
        await driver.package(1)
    state.faults = []
    with pytest.raises(Exception):  # noqa: B017,PT011 - 422 {"errors": [...]}
        await driver.create_server(spec(extra={"package_id": 5, "user": {"email": "ada@example.net"}}))
    await driver.terminate(ref)
    await driver.terminate(ref)  # 404 {"msg": "server not found"}


async def test_every_driver_request_and_simulator_answer_follow_the_spec(openapi: dict[str, Any]) -> None:
    state, app = make_sim()
    state.tokens["no-compute"] = {"servers:read"}
    driver, transport = make_driver(app)
    await exercise_everything(driver, state)
    limited, limited_transport = make_driver(app, token="no-compute")
    await limited.test_connection()  # 403s
    wrong, wrong_transport = make_driver(app, token="wrong")
    await wrong.test_connection()  # 401
    ops = Operations(openapi)
    seen: set[str] = set()
    exchanges = transport.exchanges + limited_transport.exchanges + wrong_transport.exchanges
    for request, response, body in exchanges:
        seen.add(check_request(ops, request))
        check_response(ops, request, response.status_code, body, response.headers)
    statuses = {response.status_code for _, response, _ in exchanges}
    assert {200, 201, 204, 401, 403, 404, 422, 423, 429} <= statuses
    assert len(seen) >= 40, sorted(seen)
    for d in (driver, limited, wrong):
        await d.aclose()


def test_a_wrong_shape_fails_the_derived_schema(openapi: dict[str, Any]) -> None:
    example = openapi["paths"]["/packages/{packageId}"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["example"]
    schema = derive(example)
    jsonschema.validate(example, schema)
    missing = copy.deepcopy(example)
    del missing["data"]["primaryStorage"]
    with pytest.raises(jsonschema.ValidationError, match="primaryStorage"):
        jsonschema.validate(missing, schema)
    wrong_type = copy.deepcopy(example)
    wrong_type["data"]["memory"] = "1024"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wrong_type, schema)


def test_an_invented_request_field_fails(openapi: dict[str, Any]) -> None:
    schema = openapi["paths"]["/servers/{serverId}/modify/cpuCores"]["put"]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    jsonschema.validate({"cores": 2}, strict(schema))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"cpuCores": 2}, strict(schema))
