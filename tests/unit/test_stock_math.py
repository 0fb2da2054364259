"""Stock math by example: buffer, unlimited quotas, storage type codes, server limits, the IPv4 pool,
eligibility, disabled packages and malformed inputs."""

from __future__ import annotations

import pytest
from stock_shapes import entry, package, pool

from vpsbridge.core.stock import (
    UNBOUNDED_HOST,
    Footprint,
    MalformedInput,
    Resource,
    compute_quantity,
    fit,
)


def test_fit_reserves_a_rounded_up_buffer_of_capped_resources() -> None:
    # 10 % of 6004 is 600.4 -> 601 reserved; 1908 - 601 = 1307 -> one 1024 MB server.
    assert fit(Resource(limit=6004, free=1908), 1024, 10.0) == 1
    assert fit(Resource(limit=6004, free=1908), 1024, 0.0) == 1
    assert fit(Resource(limit=100, free=10), 1, 10.0) == 0
    assert fit(Resource(limit=100, free=11), 1, 10.0) == 1


def test_fit_unlimited_or_unneeded_never_binds() -> None:
    assert fit(Resource(limit=None, free=-5), 1024, 50.0) is None
    assert fit(Resource(limit=10, free=0), 0, 10.0) is None


def test_spec_example_binds_on_cpu() -> None:
    hv = entry(memory=(6004, 1908), cores=(4, 1), local=(90, 65), ipv4=470)
    result = compute_quantity(package(), [[hv]])
    host = result.breakdown["groups"][0]["hosts"][0]
    assert result.quantity == 0
    assert host["binding"] == "cpu"
    assert host["fits"] == {"memory": 1, "cpu": 0, "storage": 5, "servers": None}


def test_minimum_over_resources_and_sum_over_hosts() -> None:
    hosts = [
        entry(1, memory=(65536, 10240), cores=(32, 32), local=(2000, 2000)),  # memory: (10240-6554)//1024 = 3
        entry(2, memory=(65536, 65536), cores=(32, 10), local=(2000, 2000)),  # cpu: 10 - 4 = 6
        entry(3, memory=(65536, 65536), cores=(32, 32), local=(2000, 300)),  # storage: (300-200)//10 = 10
    ]
    result = compute_quantity(package(), [hosts], buffer_pct=10)
    bindings = [h["binding"] for h in result.breakdown["groups"][0]["hosts"]]
    assert bindings == ["memory", "cpu", "storage"]
    assert result.quantity == 3 + 6 + 10


def test_server_count_limit_caps_a_host() -> None:
    hv = entry(servers=(10, 2))
    result = compute_quantity(package(), [[hv]])
    assert result.quantity == 2
    assert result.breakdown["groups"][0]["hosts"][0]["binding"] == "servers"
    # max 0 is "no limit" even though free is negative
    assert compute_quantity(package(), [[entry(servers=(0, -7))]]).quantity > 0


def test_storage_type_code_picks_the_best_enabled_pool() -> None:
    hv = entry(
        local=(5000, 5000),
        other=[
            pool(7, 2, 1000, 100),  # (100 - 100) -> 0
            pool(8, 2, 1000, 600),  # (600 - 100) // 10 = 50
            pool(9, 2, 10000, 9000, enabled=False),  # skipped, not fatal
            pool(10, 3, 10000, 10000),  # other type
        ],
    )
    result = compute_quantity(package(profile=2), [[hv]])
    host = result.breakdown["groups"][0]["hosts"][0]
    assert host["fits"]["storage"] == 50
    assert host["storage_pool"] == "pool8"


def test_storage_type_matches_type_not_pool_id() -> None:
    # Pool id 2 has type 5; the package asks for type 2: matching by id would wrongly use it.
    hv = entry(other=[pool(2, 5, 1000, 1000)])
    result = compute_quantity(package(profile=2), [[hv]])
    assert result.quantity == 0
    assert result.breakdown["groups"][0]["hosts"][0]["note"] == "no storage of type 2"


def test_only_disabled_pools_of_the_type_give_zero() -> None:
    hv = entry(other=[pool(1, 2, 1000, 1000, enabled=False)])
    assert compute_quantity(package(profile=2), [[hv]]).quantity == 0


def test_no_type_code_uses_local_storage() -> None:
    assert (
        compute_quantity(
            package(storage=100), [[entry(local=(1000, 500), other=[pool(1, 0, 1, 1)])]]
        ).quantity
        == 4
    )
    assert compute_quantity(package(), [[entry(local_enabled=False)]]).quantity == 0


def test_ipv4_pool_is_group_wide_and_never_summed() -> None:
    hosts = [entry(1, ipv4=5), entry(2, ipv4=5), entry(3, ipv4=3)]
    result = compute_quantity(package(), [hosts])
    group = result.breakdown["groups"][0]
    assert group["ipv4_free"] == 5
    assert result.quantity == 5
    assert group["binding"] == "ipv4"
    assert compute_quantity(package(), [hosts], ipv4_per_server=2).quantity == 2


def test_ipv4_not_reported_means_no_cap_with_a_note() -> None:
    result = compute_quantity(package(), [[entry(ipv4=None, memory=(65536, 16384), servers=None)]])
    group = result.breakdown["groups"][0]
    assert group["ipv4_cap"] is None
    assert result.quantity == (16384 - 6554) // 1024
    assert any("IPv4" in n for n in group["notes"])


def test_ineligible_hosts_count_zero_and_do_not_report_ipv4() -> None:
    hosts = [
        entry(1, enabled=False, ipv4=1000),
        entry(2, commissioned=False),
        entry(3, prohibit=True),
        entry(4, ipv4=2),
    ]
    result = compute_quantity(package(), [hosts])
    reasons = [h["ineligible"] for h in result.breakdown["groups"][0]["hosts"]]
    assert reasons == ["disabled", "not commissioned", "prohibited", None]
    assert result.quantity == 2


def test_groups_are_summed_and_deduplicated() -> None:
    g1 = [entry(1, ipv4=3)]
    g2 = [entry(2, ipv4=4)]
    assert compute_quantity(package(), [g1, g2], group_ids=[1, 2]).quantity == 7
    assert compute_quantity(package(), [g1, g1], group_ids=[1, 1]).quantity == 3


def test_deleted_group_contributes_zero() -> None:
    result = compute_quantity(package(), [[entry(ipv4=3)], None], group_ids=[1, 2])
    assert result.quantity == 3
    assert result.breakdown["groups"][1]["status"] == "missing"


def test_disabled_package_is_zero() -> None:
    result = compute_quantity(package(enabled=False), [[entry()]])
    assert result.quantity == 0
    assert "disabled" in result.breakdown["notes"][0]


def test_everything_unlimited_is_bounded() -> None:
    hv = entry(memory=(0, -1), cores=(0, -1), local=(0, -1), servers=None, ipv4=None)
    result = compute_quantity(package(), [[hv]])
    assert result.quantity == UNBOUNDED_HOST
    assert result.breakdown["groups"][0]["hosts"][0]["binding"] == "unbounded"


def test_buffer_is_clamped() -> None:
    hv = [entry(memory=(10000, 10000), ipv4=None)]
    assert compute_quantity(package(), [hv], buffer_pct=-5).buffer_pct == 0.0
    assert compute_quantity(package(), [hv], buffer_pct=250).quantity == 0


@pytest.mark.parametrize(
    ("pkg", "groups"),
    [
        ({"memory": "lots", "cpuCores": 1, "primaryStorage": 1}, [[entry()]]),
        ({"cpuCores": 1, "primaryStorage": 1}, [[entry()]]),
        ("not an object", [[entry()]]),
        (package(), [[{"hypervisor": {"id": 1}}]]),
        (package(), [[{"hypervisor": {"id": 1}, "resources": {"cpuCores": {"max": 1, "free": 1}}}]]),
        (package(), [{"data": []}]),
    ],
)
def test_malformed_inputs_raise(pkg: object, groups: list[object]) -> None:
    with pytest.raises(MalformedInput):
        compute_quantity(pkg, groups)  # type: ignore[arg-type]


def test_ineligible_host_with_broken_resources_is_not_malformed() -> None:
    broken = {"hypervisor": {"id": 9, "enabled": False}, "resources": None}
    assert compute_quantity(package(), [[broken, entry(ipv4=1)]]).quantity == 1


def test_breakdown_is_json_serialisable() -> None:
    import json

    result = compute_quantity(
        package(profile=2), [[entry(other=[pool(1, 2, 100, 100)])], None], group_ids=[3, 4]
    )
    assert json.loads(json.dumps(result.breakdown))["groups"][0]["id"] == "3"
    assert Footprint(1, 1, 1).enabled
