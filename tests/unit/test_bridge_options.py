"""WHMCS module settings (configoptionN) to product fields."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from vpsbridge.billing.whmcs.options import merge_into, parse_module_settings
from vpsbridge.services.errors import Invalid


def test_settings_become_product_fields() -> None:
    s = parse_module_settings(
        {
            "configoption1": "vf|VirtFusion",
            "configoption2": "2|Frankfurt",
            "configoption3": "4",
            "configoption4": "0",
            "configoption5": "1",
            "configoption8": "150",
            "configoption9": "5",
        }
    )
    fields = s.product_fields(name="VPS", stock_control=True)
    assert fields["platform"] == "vf"
    assert fields["placement"] == {"hypervisor_group_id": 2}
    assert fields["plan"] == {"default_ipv4": 1, "package_id": 4}  # at least one IPv4
    assert fields["stock_buffer_pct"] == 100.0  # clamped
    assert fields["settings"]["self_service_mode"] == "hourly"
    assert fields["settings"]["terminate_delay_seconds"] == 300


def test_blank_buffer_means_ten_percent() -> None:
    assert parse_module_settings({"configoption1": "7"}).stock_buffer_pct == 10.0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "Platform"),
        ({"configoption1": "vf", "configoption3": "abc"}, "Package"),
        ({"configoption1": "vf", "configoption5": "9"}, "Self-service mode"),
    ],
)
def test_bad_settings_name_the_setting(params: dict[str, str], field: str) -> None:
    with pytest.raises(Invalid) as info:
        parse_module_settings(params)
    assert info.value.field == field


def test_operator_settings_survive_an_upsert_from_whmcs() -> None:
    existing = SimpleNamespace(placement={}, plan={"cpu_cores": 2}, settings={"ignored_options": ["Backups"]})
    merged = merge_into(
        existing, {"plan": {"package_id": 1}, "settings": {"topoff_amount": 5.0}, "placement": {}}
    )
    assert merged["plan"] == {"cpu_cores": 2, "package_id": 1}
    assert merged["settings"] == {"ignored_options": ["Backups"], "topoff_amount": 5.0}
