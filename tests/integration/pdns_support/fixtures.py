"""pytest fixtures around a real ``pdns_server``; test modules import them by name.

One server per test session (it starts in ~0.1 s but takes ~1 s to stop); every test that uses
``pdns`` gets it with no zones and an empty NOTIFY log.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from conftest import require, require_binary
from pdns_support.admin import admin_client
from pdns_support.launcher import PdnsServer, find_schema, running_pdns
from vpsbridge.dns.powerdns import PowerDnsProvider
from vpsbridge.http import UpstreamRecord


@pytest.fixture(scope="session")
def pdns_session() -> Iterator[PdnsServer]:
    binary = require_binary("pdns_server")
    schema = find_schema()
    require(schema is not None, "the pdns-backend-sqlite3 schema (schema.sqlite3.sql) is not installed")
    assert schema is not None
    with running_pdns(binary, schema) as server:
        yield server


@pytest.fixture
def pdns(pdns_session: PdnsServer) -> PdnsServer:
    """The session's server, emptied of zones (tests create their own)."""
    with admin_client(pdns_session) as admin:
        for zone in admin.get("/zones").json():
            admin.delete(f"/zones/{zone['id']}").raise_for_status()
    pdns_session.notify.clear()
    return pdns_session


@pytest.fixture
def pdns_records() -> list[UpstreamRecord]:
    return []


@pytest.fixture
async def powerdns(pdns: PdnsServer, pdns_records: list[UpstreamRecord]) -> AsyncIterator[PowerDnsProvider]:
    provider = PowerDnsProvider.from_config(
        url=pdns.api_url,
        credentials={"api_key": pdns.api_key},
        settings={"default_ttl": 300, "zone_cache_seconds": 0},
        recorder=pdns_records.append,
    )
    yield provider
    await provider.aclose()
