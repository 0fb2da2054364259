"""The Cloudflare provider against the Cloudflare simulator, in process through an ASGI transport."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx2
import pytest

from vpsbridge.core.ipam import find_zone, ptr_name
from vpsbridge.dns.cloudflare import CloudflareProvider
from vpsbridge.dns.errors import DnsConfigError, DnsRateLimited, DnsUnsupported
from vpsbridge.dns.records import Change
from vpsbridge.dns.registry import create_provider
from vpsbridge.http import UpstreamRecord
from vpsbridge.sim.cloudflare import CloudflareState, create_app

TOKEN = "sim-cloudflare-token-0123456789"
URL = "http://cloudflare.sim/client/v4"
V4 = "2.0.192.in-addr.arpa."
V6 = "8.b.d.0.1.0.0.2.ip6.arpa."


@pytest.fixture
def sim() -> CloudflareState:
    state = CloudflareState()
    for zone in ("2.0.192.in-addr.arpa", V6, "example.com"):
        state.add_zone(zone)
    return state


@pytest.fixture
def records() -> list[UpstreamRecord]:
    return []


@pytest.fixture
async def cloudflare(
    sim: CloudflareState, records: list[UpstreamRecord]
) -> AsyncIterator[CloudflareProvider]:
    provider = create_provider(
        "cloudflare",
        url=URL,
        credentials={"api_token": TOKEN},
        settings={"retry_after_max": 5, "batch_limit": 50},
        recorder=records.append,
        transport=httpx2.ASGITransport(app=create_app(sim)),
    )
    assert isinstance(provider, CloudflareProvider)
    yield provider
    await provider.aclose()


def sim_records(sim: CloudflareState, zone: str) -> list[tuple[str, str, str, int]]:
    (found,) = [z for z in sim.zones.values() if z.name == zone.rstrip(".")]
    return sorted((r["name"], r["type"], r["content"], r["ttl"]) for r in found.records.values())


async def test_batch_of_ptrs_is_one_request_and_idempotent(
    sim: CloudflareState, cloudflare: CloudflareProvider, records: list[UpstreamRecord]
) -> None:
    names = await cloudflare.zone_names()
    assert set(names) == {V4, V6, "example.com."}
    changes = []
    for octet in range(1, 41):
        zone, owner = find_zone(f"192.0.2.{octet}", names) or ("", "")
        assert zone == V4
        changes.append(Change.replace(owner, "PTR", f"vps{octet}.example.com.", ttl=300))
    records.clear()
    result = await cloudflare.apply(V4, changes)
    assert result.ok
    assert len(result.applied) == 40
    batches = [r for r in records if r.url.endswith("/dns_records/batch")]
    assert len(batches) == 1  # 40 posts fit one batch of at most 50
    stored = sim_records(sim, V4)
    assert len(stored) == 40
    assert ("1.2.0.192.in-addr.arpa", "PTR", "vps1.example.com", 300) in stored

    records.clear()
    again = await cloudflare.apply(V4, changes)
    assert not again.changed
    assert len(again.unchanged) == 40
    assert [r.method for r in records] == ["GET"]  # one listing, no write


async def test_large_batches_are_split_by_the_plan_limit(
    sim: CloudflareState, cloudflare: CloudflareProvider, records: list[UpstreamRecord]
) -> None:
    changes = [Change.replace(f"{o}.{V4}", "PTR", f"h{o}.example.com.") for o in range(120)]
    records.clear()
    result = await cloudflare.apply(V4, changes)
    assert len(result.applied) == 120
    assert sum(r.url.endswith("/batch") for r in records) == 3
    assert len(sim_records(sim, V4)) == 120


async def test_replace_reuses_records_and_delete_removes(
    sim: CloudflareState, cloudflare: CloudflareProvider
) -> None:
    owner = ptr_name("2001:db8::1:2")
    await cloudflare.apply(V6, [Change.replace(owner, "PTR", "old.example.com.")])
    (zone,) = [z for z in sim.zones.values() if z.name == V6.rstrip(".")]
    (record_id,) = zone.records
    await cloudflare.apply(V6, [Change.replace(owner, "PTR", "new.example.com.", ttl=600)])
    assert list(zone.records) == [record_id]  # overwritten in place, not deleted and re-created
    rrset = await cloudflare.get_rrset(V6, owner, "PTR")
    assert rrset is not None
    assert rrset.records == ("new.example.com.",)
    assert rrset.ttl == 600
    await cloudflare.apply(V6, [Change.delete(owner, "PTR")])
    assert await cloudflare.get_rrset(V6, owner, "PTR") is None


async def test_forward_records_and_multi_value(sim: CloudflareState, cloudflare: CloudflareProvider) -> None:
    await cloudflare.apply(
        "example.com.",
        [
            Change.replace("vps1.example.com.", "A", ["192.0.2.10", "192.0.2.11"]),
            Change.replace("vps1.example.com.", "AAAA", "2001:db8::1"),
        ],
    )
    await cloudflare.apply("example.com.", [Change.replace("vps1.example.com.", "A", ["192.0.2.11"])])
    stored = sim_records(sim, "example.com")
    assert [r[2] for r in stored if r[1] == "A"] == ["192.0.2.11"]
    assert [r[2] for r in stored if r[1] == "AAAA"] == ["2001:db8::1"]


async def test_one_bad_record_does_not_sink_the_batch(
    sim: CloudflareState, cloudflare: CloudflareProvider
) -> None:
    await cloudflare.apply("example.com.", [Change.replace("www.example.com.", "CNAME", "example.net.")])
    result = await cloudflare.apply(
        "example.com.",
        [
            Change.replace("www.example.com.", "A", "192.0.2.1"),  # conflicts with the CNAME
            Change.replace("mail.example.com.", "A", "192.0.2.2"),
        ],
    )
    assert [c.name for c in result.applied] == ["mail.example.com."]
    assert len(result.failed) == 1
    assert "CNAME record with that host already exists" in result.failed[0][1]


async def test_rate_limit_retry_after_is_honoured(
    sim: CloudflareState, cloudflare: CloudflareProvider
) -> None:
    await cloudflare.zones()
    sim.throttle_next = 1
    sim.retry_after = 1
    started = time.monotonic()
    result = await cloudflare.apply(V4, [Change.replace(f"9.{V4}", "PTR", "a.example.com.")])
    assert result.ok
    assert result.changed
    assert time.monotonic() - started >= 0.9


async def test_rate_limit_too_long_is_reported(sim: CloudflareState) -> None:
    provider = create_provider(
        "cloudflare",
        url=URL,
        credentials={"api_token": TOKEN},
        settings={"retry_after_max": 2, "max_retries": 0},
        transport=httpx2.ASGITransport(app=create_app(sim)),
    )
    sim.throttle_next = 10
    sim.retry_after = 300  # Cloudflare's five-minute lockout: do not sleep through it
    started = time.monotonic()
    with pytest.raises(DnsRateLimited, match="rate limit") as caught:
        await provider.apply(V4, [Change.replace(f"9.{V4}", "PTR", "a.example.com.")])
    await provider.aclose()
    assert caught.value.retry_after == 300
    assert time.monotonic() - started < 1


async def test_classless_zones_are_refused_clearly(cloudflare: CloudflareProvider) -> None:
    with pytest.raises(DnsUnsupported, match="cannot host RFC 2317 classless zones"):
        await cloudflare.apply("0/26.2.0.192.in-addr.arpa.", [])


async def test_connection_and_bad_token(sim: CloudflareState, cloudflare: CloudflareProvider) -> None:
    report = await cloudflare.test_connection()
    assert report.ok
    assert len(report.zones) == 3
    bad = create_provider(
        "cloudflare",
        url=URL,
        credentials={"api_token": "wrong-token-value"},
        transport=httpx2.ASGITransport(app=create_app(sim)),
    )
    report = await bad.test_connection()
    await bad.aclose()
    assert not report.ok
    assert "Authentication error" in report.message
    assert "DNS:Edit" in report.message
    assert "wrong-token-value" not in report.message


def test_missing_token_is_a_config_error() -> None:
    with pytest.raises(DnsConfigError, match="API token"):
        create_provider("cloudflare", url=None, credentials={})
