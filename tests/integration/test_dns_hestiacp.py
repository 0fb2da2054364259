"""The HestiaCP provider against the HestiaCP simulator (ASGI transport)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest

from vpsbridge.core.ipam import find_zone
from vpsbridge.dns.errors import DnsConfigError, DnsUnsupported, DnsZoneNotFound
from vpsbridge.dns.hestiacp import HestiaProvider
from vpsbridge.dns.records import Change
from vpsbridge.dns.registry import create_provider
from vpsbridge.http import UpstreamRecord
from vpsbridge.sim.hestiacp import HestiaState, create_app

ACCESS = "SIMACCESSKEY000000001"
SECRET = "sim-secret-key-0123456789abcdef01234567"
PARENT = "2.0.192.in-addr.arpa."
DASH = "128-26.2.0.192.in-addr.arpa."


@pytest.fixture
def sim() -> HestiaState:
    state = HestiaState()
    for name in (PARENT, DASH, "example.com"):
        state.run("admin", "v-add-dns-domain", ["admin", name.rstrip("."), "192.0.2.1"])
    return state


@pytest.fixture
def records() -> list[UpstreamRecord]:
    return []


@pytest.fixture
async def hestia(sim: HestiaState, records: list[UpstreamRecord]) -> AsyncIterator[HestiaProvider]:
    provider = create_provider(
        "hestiacp",
        url="https://panel.sim:8083",
        credentials={"access_key": ACCESS, "secret_key": SECRET},
        settings={"user": "admin"},
        recorder=records.append,
        transport=httpx2.ASGITransport(app=create_app(sim)),
    )
    assert isinstance(provider, HestiaProvider)
    yield provider
    await provider.aclose()


def values(sim: HestiaState, zone: str) -> list[tuple[str, str, str, str]]:
    domain = sim.domains["admin"][zone.rstrip(".")]
    return sorted((r["RECORD"], r["TYPE"], r["VALUE"], r["TTL"]) for r in domain.records.values())


async def test_ptrs_in_parent_and_dash_zone(sim: HestiaState, hestia: HestiaProvider) -> None:
    names = await hestia.zone_names()
    placed: dict[str, list[Change]] = {}
    for ip, host in (("192.0.2.10", "a.example.com."), ("192.0.2.130", "b.example.com.")):
        found = find_zone(ip, names)
        assert found is not None
        placed.setdefault(found[0], []).append(Change.replace(found[1], "PTR", host, ttl=600))
    assert set(placed) == {PARENT, DASH}
    for zone, changes in placed.items():
        result = await hestia.apply(zone, changes)
        assert result.ok
        assert result.changed
    assert ("10", "PTR", "a.example.com.", "600") in values(sim, PARENT)
    assert ("130", "PTR", "b.example.com.", "600") in values(sim, DASH)
    rrset = await hestia.get_rrset(DASH, f"130.{DASH}", "PTR")
    assert rrset is not None
    assert rrset.records == ("b.example.com.",)


async def test_batch_reloads_once_and_repeat_writes_nothing(
    sim: HestiaState, hestia: HestiaProvider, records: list[UpstreamRecord]
) -> None:
    changes = [Change.replace(f"{o}.{PARENT}", "PTR", f"h{o}.example.com.") for o in range(1, 11)]
    result = await hestia.apply(PARENT, changes)
    assert len(result.applied) == 10
    domain = sim.domains["admin"][PARENT.rstrip(".")]
    assert domain.reloads == 1  # RESTART=yes only on the last command
    serial = domain.serial
    sim.commands.clear()
    again = await hestia.apply(PARENT, changes)
    assert not again.changed
    assert [c for c, _ in sim.commands] == ["v-list-dns-records"]
    assert domain.serial == serial


async def test_change_in_place_and_delete(sim: HestiaState, hestia: HestiaProvider) -> None:
    owner = f"20.{PARENT}"
    await hestia.apply(PARENT, [Change.replace(owner, "PTR", "old.example.com.")])
    domain = sim.domains["admin"][PARENT.rstrip(".")]
    ids = {rid for rid, r in domain.records.items() if r["RECORD"] == "20"}
    await hestia.apply(PARENT, [Change.replace(owner, "PTR", "new.example.com.")])
    assert {rid for rid, r in domain.records.items() if r["RECORD"] == "20"} == ids
    assert ("20", "PTR", "new.example.com.", "3600") in values(sim, PARENT)
    await hestia.apply(PARENT, [Change.delete(owner, "PTR")])
    assert not [r for r in domain.records.values() if r["RECORD"] == "20"]


async def test_forward_record_at_apex_and_host(sim: HestiaState, hestia: HestiaProvider) -> None:
    result = await hestia.apply(
        "example.com.",
        [
            Change.replace("vps1.example.com.", "A", "192.0.2.10"),
            Change.replace("example.com.", "A", "192.0.2.99"),
        ],
    )
    assert result.ok
    stored = values(sim, "example.com")
    assert ("vps1", "A", "192.0.2.10", "3600") in stored
    assert ("@", "A", "192.0.2.99", "3600") in stored  # the template's apex A was changed in place


async def test_refused_value_is_reported_per_record(sim: HestiaState, hestia: HestiaProvider) -> None:
    result = await hestia.apply(
        PARENT,
        [
            Change.replace(f"30.{PARENT}", "PTR", "localhost."),
            Change.replace(f"31.{PARENT}", "PTR", "ok.example.com."),
        ],
    )
    assert [c.name for c in result.applied] == [f"31.{PARENT}"]
    assert "invalid ptr format" in result.failed[0][1]


async def test_classless_cidr_spelling_is_refused(hestia: HestiaProvider) -> None:
    with pytest.raises(DnsUnsupported, match="only accepts the dash spelling"):
        await hestia.apply("0/26.2.0.192.in-addr.arpa.", [])


async def test_missing_zone_and_bad_keys(sim: HestiaState, hestia: HestiaProvider) -> None:
    with pytest.raises(DnsZoneNotFound):
        await hestia.apply(
            "3.0.192.in-addr.arpa.", [Change.replace("1.3.0.192.in-addr.arpa.", "PTR", "a.b.c.")]
        )
    report = await hestia.test_connection()
    assert report.ok
    assert len(report.zones) == 3
    bad = create_provider(
        "hestiacp",
        url="https://panel.sim:8083/api",
        credentials={"access_key": ACCESS, "secret_key": "wrong-secret-wrong-secret"},
        transport=httpx2.ASGITransport(app=create_app(sim)),
    )
    report = await bad.test_connection()
    await bad.aclose()
    assert not report.ok
    assert "authentication failed" in report.message
    assert "allow-list" in report.message
    assert "wrong-secret-wrong-secret" not in report.message


def test_keys_are_required() -> None:
    with pytest.raises(DnsConfigError, match="secret_key"):
        create_provider("hestiacp", url="https://panel:8083", credentials={"access_key": ACCESS})


async def test_keys_never_reach_the_request_log(
    hestia: HestiaProvider, records: list[UpstreamRecord]
) -> None:
    await hestia.apply(PARENT, [Change.replace(f"40.{PARENT}", "PTR", "x.example.com.")])
    assert records
    for record in records:
        text = f"{record.url} {record.request_body} {record.response_body} {record.error}"
        assert SECRET not in text
        assert ACCESS not in text
    assert any("hash=" in (r.request_body or "") for r in records)
