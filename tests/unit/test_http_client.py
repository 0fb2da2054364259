"""The upstream client choke point: retries, tri-state mapping, redaction, records, logs, metrics."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from vpsbridge.http import (
    Found,
    Missing,
    Unknown,
    UpstreamAuthError,
    UpstreamClient,
    UpstreamMalformed,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamRecord,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
    bind_job_id,
    parse_retry_after,
    tri_state,
)

TOKEN = "vf-token-0123456789abcdef"


def make_client(
    handler: Callable[[httpx2.Request], Any], records: list[UpstreamRecord] | None = None, **kwargs: Any
) -> UpstreamClient:
    options: dict[str, Any] = {
        "name": "test:1",
        "auth_headers": {"Authorization": f"Bearer {TOKEN}"},
        "transport": httpx2.MockTransport(handler),
        "recorder": records.append if records is not None else None,
        "retry_wait_initial": 0.001,
        "retry_wait_max": 0.01,
        "retry_wait_jitter": 0.0,
    }
    options.update(kwargs)
    return UpstreamClient("https://upstream.test/api/v1", **options)


class Script:
    """A handler answering from a list of (status, body, headers) and counting calls."""

    def __init__(self, *answers: tuple[int, Any] | tuple[int, Any, dict[str, str]] | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        status, body, *rest = answer
        headers = rest[0] if rest else {}
        if isinstance(body, bytes):
            return httpx2.Response(status, content=body, headers=headers)
        return httpx2.Response(status, json=body, headers=headers)


async def test_get_value_and_record() -> None:
    records: list[UpstreamRecord] = []
    script = Script((200, {"data": {"id": 7}}))
    async with make_client(script, records) as client:
        response = await client._request("GET", "/servers/7", params={"with": "ips"})
    assert response.data == {"data": {"id": 7}}
    assert response.status == 200
    assert script.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert str(script.requests[0].url) == "https://upstream.test/api/v1/servers/7?with=ips"
    (record,) = records
    assert (record.client, record.method, record.status, record.outcome) == ("test:1", "GET", 200, "value")
    assert record.url.endswith("/servers/7?with=ips")
    assert record.response_body == '{"data":{"id":7}}'
    assert record.duration_ms >= 0
    assert record.job_id is None


async def test_idempotent_get_retries_on_503_then_succeeds() -> None:
    records: list[UpstreamRecord] = []
    script = Script((503, {"message": "busy"}), (502, b"bad gateway"), (200, {"ok": True}))
    async with make_client(script, records, max_retries=2) as client:
        response = await client._request("GET", "/ping")
    assert response.data == {"ok": True}
    assert len(script.requests) == 3
    assert [r.outcome for r in records] == ["unknown", "unknown", "value"]
    assert [r.attempt for r in records] == [1, 2, 3]


async def test_retries_exhausted_raise_unavailable() -> None:
    script = Script((504, b"gateway timeout"))
    async with make_client(script, max_retries=3) as client:
        with pytest.raises(UpstreamUnavailable) as info:
            await client._request("DELETE", "/servers/1")
    assert len(script.requests) == 4
    assert info.value.status == 504
    assert "504" in str(info.value)


async def test_post_is_never_retried_by_default() -> None:
    script = Script((503, {"message": "try later"}), (201, {"id": 1}))
    async with make_client(script, max_retries=5) as client:
        with pytest.raises(UpstreamUnavailable, match="try later"):
            await client._request("POST", "/servers", json={"hostname": "a"})
    assert len(script.requests) == 1


async def test_post_flagged_idempotent_is_retried() -> None:
    script = Script((503, {}), (201, {"id": 1}))
    async with make_client(script) as client:
        response = await client._request("POST", "/dns/batch", json={}, idempotent=True)
    assert response.status == 201
    assert len(script.requests) == 2


async def test_put_flagged_not_idempotent_is_not_retried() -> None:
    script = Script((503, {}), (200, {}))
    async with make_client(script) as client:
        with pytest.raises(UpstreamUnavailable):
            await client._request("PUT", "/counter", idempotent=False)
    assert len(script.requests) == 1


async def test_500_is_not_retried() -> None:
    script = Script((500, {"error": "boom"}), (200, {}))
    async with make_client(script) as client:
        with pytest.raises(UpstreamUnavailable, match="boom"):
            await client._request("GET", "/x")
    assert len(script.requests) == 1


async def test_429_honours_retry_after() -> None:
    script = Script((429, {"message": "slow down"}, {"Retry-After": "0.3"}), (200, {"ok": 1}))
    async with make_client(script) as client:
        started = time.monotonic()
        response = await client._request("GET", "/zones")
        waited = time.monotonic() - started
    assert response.data == {"ok": 1}
    assert waited >= 0.28


async def test_429_retry_after_is_capped_and_surfaces_rate_limited() -> None:
    script = Script((429, {"message": "slow down"}, {"Retry-After": "3600"}))
    async with make_client(script, max_retries=1, retry_after_max=0.05) as client:
        started = time.monotonic()
        with pytest.raises(UpstreamRateLimited) as info:
            await client._request("GET", "/zones")
        assert time.monotonic() - started < 2
    assert info.value.retry_after == pytest.approx(3600)
    assert len(script.requests) == 2


def test_parse_retry_after() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    far = parse_retry_after("Wed, 21 Oct 2099 07:28:00 GMT")
    assert far is not None
    assert far > 1e8


async def test_404_is_confirmed_missing() -> None:
    records: list[UpstreamRecord] = []
    script = Script((404, {"message": "Server not found"}))
    async with make_client(script, records) as client:
        with pytest.raises(UpstreamNotFound, match="Server not found"):
            await client._request("GET", "/servers/9")
        result = await tri_state(client._request("GET", "/servers/9"))
    assert isinstance(result, Missing)
    assert "Server not found" in result.reason
    assert len(script.requests) == 2  # 404 is an answer, never retried
    assert records[0].outcome == "missing"


async def test_auth_and_rejected_errors_carry_vendor_messages() -> None:
    script = Script((403, {"message": "This action is unauthorized: servers.create"}))
    async with make_client(script) as client:
        with pytest.raises(UpstreamAuthError, match=r"servers\.create"):
            await client._request("POST", "/servers")
    script = Script((422, {"message": "invalid", "errors": {"hostname": ["The hostname is required."]}}))
    async with make_client(script) as client:
        with pytest.raises(UpstreamRejected) as info:
            await client._request("POST", "/servers")
    assert info.value.status == 422
    assert "invalid" in str(info.value)
    script = Script((400, {"errors": {"hostname": ["The hostname is required."], "cpu": "too many"}}))
    async with make_client(script) as client:
        with pytest.raises(
            UpstreamRejected, match=re.escape("hostname: The hostname is required.; cpu: too many")
        ):
            await client._request("POST", "/servers")


async def test_malformed_json_is_unknown() -> None:
    records: list[UpstreamRecord] = []
    script = Script((200, b"<html>maintenance</html>"))
    async with make_client(script, records) as client:
        with pytest.raises(UpstreamMalformed):
            await client._request("GET", "/servers")
        result = await tri_state(client._request("GET", "/servers"))
        text = await client._request("GET", "/servers", expect_json=False)
    assert isinstance(result, Unknown)
    assert isinstance(result.error, UpstreamMalformed)
    assert records[0].outcome == "unknown"
    assert text.data is None
    assert text.text == "<html>maintenance</html>"


async def test_tri_state_found_and_programming_errors_propagate() -> None:
    async with make_client(Script((200, [1, 2]))) as client:
        result = await tri_state(client._request("GET", "/list"))
    assert isinstance(result, Found)
    assert result.value.data == [1, 2]

    async def broken() -> None:
        raise TypeError("bug")

    with pytest.raises(TypeError):
        await tri_state(broken())


async def test_redirect_is_unknown_with_hint() -> None:
    script = Script((301, b"", {"Location": "https://other.test/api"}))
    async with make_client(script) as client:
        with pytest.raises(UpstreamUnavailable, match=re.escape("redirect to https://other.test/api")):
            await client._request("GET", "/x")


async def test_transport_errors_map_to_unknown_and_retry() -> None:
    script = Script(httpx2.ConnectError("refused"), httpx2.ReadTimeout("slow"), (200, {}))
    async with make_client(script, max_retries=2) as client:
        assert (await client._request("GET", "/x")).status == 200
    assert len(script.requests) == 3
    script = Script(httpx2.ReadTimeout("slow"))
    async with make_client(script, max_retries=1) as client:
        with pytest.raises(UpstreamTimeout):
            await client._request("GET", "/x")
    assert len(script.requests) == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_real_connection_refused_is_unknown() -> None:
    records: list[UpstreamRecord] = []
    port = _free_port()
    client = UpstreamClient(
        f"http://127.0.0.1:{port}",
        name="closed",
        recorder=records.append,
        max_retries=1,
        retry_wait_initial=0.001,
        retry_wait_max=0.01,
        retry_wait_jitter=0,
        connect_timeout=1,
    )
    async with client:
        result = await tri_state(client._request("GET", "/"))
    assert isinstance(result, Unknown)
    assert len(records) == 2
    assert all(r.status is None and r.outcome == "unknown" and r.error for r in records)


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def handle(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield port
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_real_read_timeout_is_separate_from_connect_timeout(silent_server: int) -> None:
    client = UpstreamClient(
        f"http://127.0.0.1:{silent_server}", name="silent", connect_timeout=5, read_timeout=0.2, max_retries=0
    )
    async with client:
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout, match="timed out"):
            await client._request("GET", "/slow")
        assert time.monotonic() - started < 2


async def test_secrets_never_reach_records_logs_or_errors() -> None:
    records: list[UpstreamRecord] = []
    root_password = "Gen3rated-Root-Pw"

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            401, json={"message": f"token {TOKEN} rejected", "api_key": "leaked-by-vendor"}
        )

    client = make_client(handler, records, secrets=[root_password])
    async with client:
        with capture_logs() as logs, pytest.raises(UpstreamAuthError) as info:
            await client._request(
                "POST",
                f"/servers/1/password?apikey=abc123456&x={root_password}",
                json={"password": root_password, "hostname": "h.example", "note": f"pw is {root_password}"},
            )
    everything = json.dumps([r.as_dict() for r in records], default=str) + json.dumps(logs) + str(info.value)
    for secret in (TOKEN, root_password, "abc123456", "leaked-by-vendor"):
        assert secret not in everything, secret
    assert "h.example" in everything
    assert records[0].request_body is not None
    assert '"password":"***"' in records[0].request_body


async def test_form_and_query_secrets_are_masked_in_record() -> None:
    records: list[UpstreamRecord] = []
    async with make_client(Script((200, {"ok": 1})), records) as client:
        await client._request(
            "POST", "/api/", data={"user": "admin", "hash": "access:secretkey", "cmd": "v-list-dns-records"}
        )
    assert records[0].request_body == "user=admin&hash=***&cmd=v-list-dns-records"


async def test_body_truncated_to_log_body_bytes() -> None:
    records: list[UpstreamRecord] = []
    async with make_client(Script((200, {"blob": "x" * 10_000})), records, log_body_bytes=64) as client:
        response = await client._request("GET", "/big")
    assert len(response.data["blob"]) == 10_000  # the caller gets everything
    assert records[0].response_body is not None
    assert len(records[0].response_body) < 120
    assert "truncated" in records[0].response_body


async def test_job_id_from_context_lands_in_records_and_logs() -> None:
    records: list[UpstreamRecord] = []
    async with make_client(Script((200, {})), records) as client:
        with bind_job_id(42), capture_logs() as logs:
            await client._request("GET", "/a")
        await client._request("GET", "/b")
    assert [r.job_id for r in records] == [42, None]
    line = next(entry for entry in logs if entry["event"] == "upstream_request")
    assert line["job_id"] == 42
    assert line["outcome"] == "value"
    assert line["client"] == "test:1"


async def test_metrics_are_observed() -> None:
    def value(name: str, labels: dict[str, str]) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    hist = {"client": "metrics:1", "method": "GET", "outcome": "unknown"}
    errors = {"client": "metrics:1", "outcome": "unknown"}
    before_count = value("vpsbridge_upstream_request_seconds_count", hist)
    before_errors = value("vpsbridge_upstream_errors_total", errors)
    async with make_client(Script((503, {}), (200, {})), name="metrics:1") as client:
        await client._request("GET", "/")
    assert value("vpsbridge_upstream_request_seconds_count", hist) == before_count + 1
    assert value("vpsbridge_upstream_errors_total", errors) == before_errors + 1
    ok = {"client": "metrics:1", "method": "GET", "outcome": "value"}
    assert value("vpsbridge_upstream_request_seconds_count", ok) >= 1


async def test_broken_recorder_does_not_break_requests() -> None:
    def recorder(_record: UpstreamRecord) -> None:
        raise RuntimeError("disk full")

    async with make_client(Script((200, {"ok": 1})), recorder=recorder) as client:
        assert (await client._request("GET", "/")).data == {"ok": 1}


class VendorClient(UpstreamClient):
    """A vendor that reports missing objects as 422 with a code, and errors in its own envelope."""

    def is_missing(self, response: httpx2.Response) -> bool:
        return super().is_missing(response) or (
            response.status_code == 422 and response.json().get("code") == "server_not_found"
        )

    def error_message(self, response: httpx2.Response) -> str | None:
        return str(response.json().get("reason"))


async def test_subclass_hooks() -> None:
    script = Script((422, {"code": "server_not_found", "reason": "no such server 5"}))
    client = VendorClient("https://v.test", name="vendor", transport=httpx2.MockTransport(script))
    async with client:
        with pytest.raises(UpstreamNotFound, match="no such server 5"):
            await client._request("GET", "/servers/5")


async def test_dynamic_request_headers_hook() -> None:
    class TicketClient(UpstreamClient):
        async def request_headers(self) -> dict[str, str]:
            return {"CSRFPreventionToken": "csrf-abcdef-123"}

    script = Script((200, {}))
    records: list[UpstreamRecord] = []
    client = TicketClient(
        "https://pve.test", name="pve", transport=httpx2.MockTransport(script), recorder=records.append
    )
    async with client:
        await client._request("GET", "/version")
    assert script.requests[0].headers["csrfpreventiontoken"] == "csrf-abcdef-123"
