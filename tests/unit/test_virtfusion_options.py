"""Configurable-option mapping, endpoint permissions and response parsing of the VirtFusion driver."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpsbridge.platforms.virtfusion.client import api_base, panel_base
from vpsbridge.platforms.virtfusion.driver import addresses, live_stats
from vpsbridge.platforms.virtfusion.options import OptionError, map_options, memory_mb, option_value
from vpsbridge.platforms.virtfusion.scopes import SCOPES, scope_for


def test_whmcs_value_label_pairs_and_display_names_are_parsed() -> None:
    mapped = map_options(
        {
            "Memory|RAM": "4|4 GB",
            "CPU Cores": "2|Two cores",
            "Location|Datacentre": "3|London",
            "storage": " 80 ",
            "Bandwidth": "0|Unmetered",
            "Firewall Rulesets": "1, 2;3",
            "Additional Storage": "20|20 GB",
            "Colour": "blue",
            "Network Type": "",
        }
    )
    assert mapped.fields == {
        "memory": 4096,
        "cpuCores": 2,
        "hypervisorId": 3,
        "storage": 80,
        "traffic": 0,
        "firewallRulesets": [1, 2, 3],
        "additionalStorage1Capacity": 20,
        "additionalStorage1Enable": True,
    }
    assert mapped.unknown == {"Colour": "blue"}
    assert mapped.modify_values() == {"memory": 4096, "cpuCores": 2, "traffic": 0}


def test_option_names_are_configurable() -> None:
    mapped = map_options({"RAM": "2048", "Memory": "1"}, {"memory": "RAM"})
    assert mapped.fields == {"memory": 2048}
    assert mapped.unknown == {"Memory": "1"}
    assert map_options({"Memory": "2"}, {"memory": ""}).fields == {}
    with pytest.raises(OptionError, match="unknown option field"):
        map_options({}, {"ram": "RAM"})


def test_bad_values_are_refused_with_the_field_named() -> None:
    with pytest.raises(OptionError, match="cpuCores"):
        map_options({"CPU Cores": "lots|Lots"})
    with pytest.raises(OptionError, match="negative"):
        map_options({"Storage": "-5"})


@given(st.integers(min_value=1, max_value=1023))
def test_memory_below_1024_is_gigabytes(gb: int) -> None:
    assert memory_mb(gb) == gb * 1024


@given(st.integers(min_value=1024, max_value=10**7))
def test_memory_from_1024_is_megabytes(mb: int) -> None:
    assert memory_mb(mb) == mb


@given(
    st.integers(min_value=0, max_value=10**6),
    st.text(alphabet=st.characters(blacklist_characters="|"), max_size=20),
)
def test_value_part_is_what_php_int_cast_reads(value: int, label: str) -> None:
    assert option_value(f"{value}|{label}") == str(value)


def test_every_endpoint_the_driver_uses_has_a_named_permission() -> None:
    assert scope_for("GET", "/compute/hypervisors/groups") == "compute:read"
    assert scope_for("GET", "https://cp.example/api/v1/servers/3?remoteState=true") == "servers:read"
    assert scope_for("POST", "/servers/3/power/boot") == "servers:write"
    assert scope_for("GET", "/queue/9") == "servers:read"
    assert scope_for("POST", "/users") == "users:write"
    assert scope_for("GET", "/users/4/byExtRelation") == "users:read"
    assert scope_for("POST", "/selfService/credit/byUserExtRelationId/4") == "self_service:write"
    assert scope_for("GET", "/connect") is None
    assert {scope_for("GET", p) for p in ("/packages", "/media/templates/fromServerPackageSpec/1")} <= set(
        SCOPES
    )


def test_panel_and_api_urls() -> None:
    assert api_base("https://cp.example.com/") == "https://cp.example.com/api/v1"
    assert api_base("https://cp.example.com/api/v1") == "https://cp.example.com/api/v1"
    assert panel_base("https://cp.example.com/api/v1/") == "https://cp.example.com"


def test_addresses_walk_primary_and_secondary_interfaces() -> None:
    server = {
        "network": {
            "interfaces": [
                {
                    "ipv4": [{"address": "192.0.2.10"}],
                    "ipv6": [{"subnet": "2001:db8:1::", "cidr": 80, "addresses": []}],
                }
            ],
            "secondaryInterfaces": [{"ipv4": [{"address": "10.0.0.5"}], "ipv6": []}],
        }
    }
    assert addresses(server) == (["192.0.2.10", "10.0.0.5"], ["2001:db8:1::/80"])


def test_live_memory_from_the_balloon_and_from_the_windows_agent() -> None:
    state, stats = live_stats(
        {"state": "running", "cpu": 12.5, "memory": {"actual": 2097152, "unused": 1048576}}
    )
    assert state == "running"
    assert stats == {
        "cpu_pct": 12.5,
        "memory_used_mb": 1024.0,
        "memory_total_mb": 2048.0,
    }
    state, stats = live_stats(
        {
            "state": "running",
            "memory": {"memtotal": 4194304, "memfree": 3145728, "_source": "agent_meminfo"},
            "agent": {"fsinfo": [{"used-bytes": 2 * 1024**3}, {"used-bytes": 1024**3}]},
        }
    )
    assert stats["memory_used_mb"] == 1024.0
    assert stats["disk_used_gb"] == 3.0
    assert live_stats(False) == (None, {})
    assert live_stats({"state": "shutoff"})[0] == "stopped"
