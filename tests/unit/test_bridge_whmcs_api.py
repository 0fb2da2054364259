"""The WHMCS API client: PHP-style encoding, booleans, success by ``result``, list unwrapping."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qsl

import httpx2
import pytest

from vpsbridge.billing.whmcs.api import WhmcsApiError, WhmcsAuthError, WhmcsClient, WhmcsCredentials
from vpsbridge.billing.whmcs.encoding import php_form, php_serialize, unwrap_list
from vpsbridge.http import UpstreamMalformed


def test_php_form_flattens_arrays_and_spells_booleans_as_digits() -> None:
    pairs = php_form(
        {"pid": [1, 2], "pricing": {1: {"monthly": "5.00"}}, "autosetup": False, "x": None, "y": True}
    )
    assert pairs == [
        ("pid[0]", "1"),
        ("pid[1]", "2"),
        ("pricing[1][monthly]", "5.00"),
        ("autosetup", "0"),
        ("y", "1"),
    ]


def test_php_serialize_matches_php() -> None:
    # php -r 'echo serialize([1 => "Yahoo", "k" => true, 2 => 3.5, "é" => null]);'
    assert (
        php_serialize({1: "Yahoo", "k": True, "2": 3.5, "é": None})
        == 'a:4:{i:1;s:5:"Yahoo";s:1:"k";b:1;i:2;d:3.5;s:2:"é";N;}'
    )


def test_unwrap_list_tolerates_every_shape_whmcs_uses() -> None:
    assert unwrap_list({"orders": {"order": [{"id": "1"}]}}, "orders", "order") == [{"id": "1"}]
    assert unwrap_list({"orders": {"order": {"id": "1"}}}, "orders", "order") == [{"id": "1"}]
    assert unwrap_list({"orders": ""}, "orders", "order") == []
    assert unwrap_list({}, "orders", "order") == []


class FakeWhmcs:
    """``includes/api.php`` answering from a table of canned bodies; records every request."""

    def __init__(self, answers: dict[str, tuple[int, Any]]) -> None:
        self.answers = answers
        self.requests: list[dict[str, str]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        assert request.url.path == "/includes/api.php"
        form = dict(parse_qsl(request.content.decode()))
        self.requests.append(form)
        status, body = self.answers[form["action"]]
        content = body if isinstance(body, str) else json.dumps(body)
        return httpx2.Response(status, content=content.encode())


def client(fake: FakeWhmcs, **creds: Any) -> WhmcsClient:
    credentials = WhmcsCredentials(
        url="https://billing.example.com/", **(creds or {"identifier": "id", "secret": "sec"})
    )
    return WhmcsClient(credentials, transport=httpx2.MockTransport(fake))


async def test_accept_order_sends_credentials_and_autosetup_off() -> None:
    fake = FakeWhmcs({"AcceptOrder": (200, {"result": "success"})})
    async with client(fake, identifier="id", secret="sec", access_key="ak") as api:
        await api.accept_order(12)
    form = fake.requests[0]
    assert form == {
        "action": "AcceptOrder",
        "responsetype": "json",
        "orderid": "12",
        "autosetup": "0",
        "sendemail": "1",
        "identifier": "id",
        "secret": "sec",
        "accesskey": "ak",
    }


async def test_result_error_with_http_200_is_a_failure() -> None:
    fake = FakeWhmcs({"UpdateClientProduct": (200, {"result": "error", "message": "Service ID Not Found"})})
    async with client(fake) as api:
        with pytest.raises(WhmcsApiError, match="Service ID Not Found"):
            await api.update_client_product(99, dedicatedip="192.0.2.5")


async def test_403_with_json_is_an_auth_error_naming_the_cause() -> None:
    fake = FakeWhmcs({"GetOrders": (403, {"result": "error", "message": "Invalid IP 203.0.113.9"})})
    async with client(fake) as api:
        with pytest.raises(WhmcsAuthError, match=r"Invalid IP 203\.0\.113\.9"):
            await api.get_orders(id=1)


async def test_html_answer_is_unknown_never_success() -> None:
    fake = FakeWhmcs({"LogActivity": (200, "<html>login</html>")})
    async with client(fake) as api:
        with pytest.raises(UpstreamMalformed):
            await api.log_activity("x")


async def test_custom_fields_are_base64_php_serialized_and_pages_are_followed() -> None:
    pages = FakeWhmcs(
        {
            "UpdateClientProduct": (200, {"result": "success", "serviceid": 5}),
            "GetClientsProducts": (
                200,
                {"result": "success", "totalresults": 1, "products": {"product": [{"id": "5"}]}},
            ),
        }
    )
    async with client(pages) as api:
        await api.update_client_product(5, custom_fields={3: "ubuntu-24"}, servicepassword="pw")
        products = await api.get_clients_products(clientid=2)
    sent = pages.requests[0]
    assert base64.b64decode(sent["customfields"]).decode() == 'a:1:{i:3;s:9:"ubuntu-24";}'
    assert products == [{"id": "5"}]


def test_credentials_are_required() -> None:
    with pytest.raises(ValueError, match="identifier and secret"):
        WhmcsClient(WhmcsCredentials(url="https://billing.example.com"))
