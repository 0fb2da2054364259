"""Product settings + configurable options: defaults, plain names, legacy prefixes, units, refusals."""

from __future__ import annotations

import pytest

from vpsbridge.core.options import (
    OPTION_NAMES,
    OptionError,
    ResolvedResources,
    known_option_names,
    match_option,
    parse_gb,
    parse_memory_mb,
    resolve_resources,
    shrink_warnings,
)

PLAN = {"cpu_cores": 2, "memory_mb": 2048, "disk_gb": 40, "template": 9000}


def test_product_defaults_alone_make_a_server() -> None:
    spec = resolve_resources(PLAN)
    assert (spec.cpu_cores, spec.memory_mb, spec.disk_gb) == (2, 2048, 40)
    assert spec.os_template == "9000"
    assert spec.ipv4 == 1
    assert spec.ipv6 == 0
    assert spec.additional_disk_gb == 0
    assert spec.sources["cpu_cores"] == "product"
    assert spec.sources["bandwidth_mbps"] == "default"


def test_every_plain_name_overrides_its_default() -> None:
    options = {names[0]: "3" for key, names in OPTION_NAMES.items() if key != "os_template"}
    options["Operating System"] = "debian-12"
    spec = resolve_resources(PLAN, options)
    assert spec.cpu_cores == 3
    assert spec.memory_mb == 3 * 1024  # a bare number below 1024 is GB
    assert spec.disk_gb == 3
    assert spec.additional_disk_gb == 3
    assert spec.disk_read_mbps == 3.0
    assert spec.disk_write_iops == 3
    assert spec.additional_disk_read_iops == 3
    assert spec.additional_disk_write_mbps == 3.0
    assert spec.bandwidth_mbps == 3
    assert spec.ipv4 == 3
    assert spec.ipv6 == 3
    assert spec.backups == 3
    assert spec.snapshots == 3
    assert spec.os_template == "debian-12"
    assert spec.sources["disk_gb"] == "option System Disk"


def test_billing_value_and_label_forms() -> None:
    spec = resolve_resources(PLAN, {"RAM|Memory": "8|8 GB", "System Disk": "100 GB", "CPU Cores": "4|4 vCPU"})
    assert (spec.memory_mb, spec.disk_gb, spec.cpu_cores) == (8192, 100, 4)


def test_legacy_prefix_accepted_and_plain_name_wins_in_any_order() -> None:
    assert resolve_resources(PLAN, {"cpu": "6"}).cpu_cores == 6
    assert resolve_resources(PLAN, {"cpu": "6", "CPU Cores": "3"}).cpu_cores == 3
    assert resolve_resources(PLAN, {"CPU Cores": "3", "cpu": "6"}).cpu_cores == 3
    assert (
        resolve_resources(
            PLAN, {"disk2_riops": "500", "Additional Disk Read IOPS": "900"}
        ).additional_disk_read_iops
        == 900
    )


def test_blank_option_keeps_the_default() -> None:
    assert resolve_resources(PLAN, {"RAM": ""}).memory_mb == 2048


def test_unknown_option_refused_unless_ignored_or_mapped() -> None:
    with pytest.raises(OptionError, match="Location"):
        resolve_resources(PLAN, {"Location": "London"})
    assert resolve_resources(PLAN, {"Location": "London"}, ignored=["location"]).cpu_cores == 2
    spec = resolve_resources(PLAN, {"Processor": "5"}, option_names={"Processor": "cpu_cores"})
    assert spec.cpu_cores == 5
    assert resolve_resources(PLAN, {"Whatever": "1"}, strict=False).cpu_cores == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"CPU Cores": "0"}, "at least 1"),
        ({"RAM": "lots"}, "not a size"),
        ({"System Disk": "-5"}, "not a size"),
        ({"Network Bandwidth": "fast"}, "not a number"),
    ],
)
def test_bad_values_are_named(options: dict[str, str], message: str) -> None:
    with pytest.raises(OptionError, match=message):
        resolve_resources(PLAN, options)


def test_units() -> None:
    assert parse_memory_mb("4096") == 4096
    assert parse_memory_mb("4 GB") == 4096
    assert parse_memory_mb("512MB") == 512
    assert parse_memory_mb("1.5G") == 1536
    assert parse_gb("1 TB", what="disk") == 1024
    assert parse_gb("40|40 GB", what="disk") == 40


def test_yes_no_backups() -> None:
    assert resolve_resources(PLAN, {"Backups": "Yes"}).backups == 1
    assert resolve_resources(PLAN, {"Backups": "No"}).backups == 0


def test_round_trip_through_a_job_payload() -> None:
    spec = resolve_resources(PLAN, {"IPv6 Addresses": "2", "IPv4 Addresses": "0"})
    again = ResolvedResources.from_dict(spec.as_dict())
    assert again == spec
    assert again.ipv4 == 0
    assert again.ipv6 == 2


def test_match_option_reports_plainness() -> None:
    assert match_option("System Disk Write IOPS") == ("disk_write_iops", True)
    assert match_option("disk_wiops") == ("disk_write_iops", False)
    assert match_option("nope") is None
    assert known_option_names()[0] == "CPU Cores"


def test_shrink_warnings() -> None:
    old = resolve_resources({**PLAN, "additional_disk_gb": 50})
    smaller = resolve_resources({**PLAN, "disk_gb": 20, "additional_disk_gb": 0})
    warnings = shrink_warnings(old, smaller)
    assert any("system disk stays at 40 GB" in w for w in warnings)
    assert any("explicit confirmation" in w for w in warnings)
    assert not any("confirmation" in w for w in shrink_warnings(old, smaller, confirm_detach=True))
    assert shrink_warnings(old, resolve_resources({**PLAN, "disk_gb": 80, "additional_disk_gb": 60})) == []
