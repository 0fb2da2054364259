"""HTTP access to the VirtFusion REST API v1 - one method per endpoint, nothing else.

Everything goes through :meth:`UpstreamClient._request` (bearer token, TLS with an optional CA
bundle, connect 10 s / read 30 s, retries for idempotent calls, 429 ``Retry-After``, redaction). On
top of the shared mapping this client knows VirtFusion's own answers:

* ``{"errors": [...]}`` (422) and ``{"msg": "..."}`` (404, 423 ...) carry the reason shown to people;
* 403 means the token lacks a permission: :class:`~.errors.ScopeMissing` names it (from :mod:`.scopes`);
* 423 means another task holds the server: :class:`ServerLocked`, an *unknown*, retried later;
* 404 on a ``/servers/{id}`` path is :class:`ServerMissing` (confirmed gone), 422 :class:`InvalidRequest`.

Methods return the decoded JSON (``data`` unwrapped where the API always wraps), so the driver maps
shapes and this module stays a faithful, testable transcript of the spec.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Literal

import httpx2

from vpsbridge.http.client import UpstreamClient
from vpsbridge.http.errors import UpstreamError, UpstreamMalformed
from vpsbridge.http.record import Recorder
from vpsbridge.http.response import UpstreamResponse
from vpsbridge.platforms.errors import InvalidRequest, ServerLocked, ServerMissing
from vpsbridge.platforms.virtfusion.errors import ScopeMissing
from vpsbridge.platforms.virtfusion.scopes import scope_for

PowerVerb = Literal["boot", "shutdown", "restart", "poweroff"]
ModifyField = Literal["memory", "cpuCores", "traffic"]
#: Largest page the API accepts for ``results``.
MAX_PAGE = 200
#: Safety stop for pagination loops (200 x 500 = 100 000 objects).
MAX_PAGES = 500

_SERVER_PATH = re.compile(r"/servers/\d+(/|$|\?)")


def api_base(url: str) -> str:
    """The API root for a panel URL: ``https://cp.example.com`` -> ``https://cp.example.com/api/v1``."""
    base = url.rstrip("/")
    return base if base.endswith("/api/v1") else base + "/api/v1"


def panel_base(url: str) -> str:
    """The panel's web root (for SSO and console links), whatever form the URL was given in."""
    base = url.rstrip("/")
    return base[: -len("/api/v1")] if base.endswith("/api/v1") else base


class VirtFusionClient(UpstreamClient):
    """A VirtFusion API v1 client for one panel and one API token."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        verify: bool | str | Path = True,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        transport: httpx2.AsyncBaseTransport | None = None,
        recorder: Recorder | None = None,
        max_retries: int = 2,
        retry_wait_initial: float = 0.25,
        retry_wait_max: float = 5.0,
    ) -> None:
        super().__init__(
            api_base(url),
            name="virtfusion",
            auth_headers={"Authorization": f"Bearer {token}"},
            verify=verify,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            transport=transport,
            recorder=recorder,
            secrets=[token],
            max_retries=max_retries,
            retry_wait_initial=retry_wait_initial,
            retry_wait_max=retry_wait_max,
        )

    # --- error mapping ------------------------------------------------------------------------------

    def _map_error(self, method: str, url: str, response: httpx2.Response, body: str | None) -> UpstreamError:
        error = super()._map_error(method, url, response, body)
        status = response.status_code
        kwargs: dict[str, Any] = {
            "client": self.name,
            "method": method,
            "url": url,
            "status": status,
            "body": body,
        }
        path = httpx2.URL(url).path
        if status == 403:
            scope = scope_for(method, path)
            hint = f"; grant the API token the {scope!r} permission" if scope else ""
            return ScopeMissing(error.message + hint, scope=scope, **kwargs)
        if status == 423:
            return ServerLocked(error.message + " (the server is locked by a running task)", **kwargs)
        if status == 422:
            return InvalidRequest(error.message, **kwargs)
        if status == 404 and _SERVER_PATH.search(path):
            return ServerMissing(error.message, **kwargs)
        return error

    # --- helpers ------------------------------------------------------------------------------------

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._request(method, path, **kwargs)
        return response.data

    async def _data(self, method: str, path: str, **kwargs: Any) -> Any:
        """The ``data`` member of the answer; a 2xx without it is malformed (an unknown, not a value)."""
        response = await self._request(method, path, **kwargs)
        return self._unwrap(response)

    def _unwrap(self, response: UpstreamResponse) -> Any:
        body = response.data
        if not isinstance(body, dict) or "data" not in body:
            raise UpstreamMalformed(
                f"{self.name}: {response.url} answered {response.status} without a 'data' member",
                client=self.name,
                url=response.url,
                status=response.status,
            )
        return body["data"]

    async def paginate(
        self, path: str, params: Mapping[str, Any] | None = None, *, per_page: int = MAX_PAGE
    ) -> AsyncIterator[dict[str, Any]]:
        """Every item of a Laravel-paginated list, following ``current_page`` up to ``last_page``."""
        page = 1
        while True:
            query = {**(params or {}), "results": per_page, "page": page}
            body = await self._json("GET", path, params=query)
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise UpstreamMalformed(f"{self.name}: GET {path} is not a paginated list", client=self.name)
            for item in body["data"]:
                yield item
            last = int(body.get("last_page") or 1)
            current = int(body.get("current_page") or page)
            if current >= last or not body["data"] or page >= MAX_PAGES:
                return
            page = current + 1

    async def collect(self, path: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return [item async for item in self.paginate(path, params)]

    # --- connection and catalogue -------------------------------------------------------------------

    async def connect(self) -> Any:
        """``GET /connect``: 200 (body ``[]``) when the URL and token are right."""
        return await self._json("GET", "/connect")

    async def hypervisor_groups_page(self, *, results: int = 1) -> dict[str, Any]:
        """One page of hypervisor groups; ``results=1`` is the cheap permission probe."""
        body = await self._json("GET", "/compute/hypervisors/groups", params={"results": results})
        return body if isinstance(body, dict) else {}

    async def hypervisor_groups(self) -> list[dict[str, Any]]:
        return await self.collect("/compute/hypervisors/groups")

    async def hypervisor_group(self, group_id: int) -> dict[str, Any]:
        return dict(await self._data("GET", f"/compute/hypervisors/groups/{int(group_id)}"))

    async def group_resources(self, group_id: int) -> list[dict[str, Any]]:
        """Every hypervisor of a group with its resources (all pages; the stock math reads this)."""
        return await self.collect(f"/compute/hypervisors/groups/{int(group_id)}/resources")

    async def packages(self) -> list[dict[str, Any]]:
        return list(await self._data("GET", "/packages"))

    async def package(self, package_id: int) -> dict[str, Any]:
        return dict(await self._data("GET", f"/packages/{int(package_id)}"))

    async def templates_for_package(self, package_id: int) -> list[dict[str, Any]]:
        """OS template categories a package may install (``data[].templates[]``)."""
        return list(await self._data("GET", f"/media/templates/fromServerPackageSpec/{int(package_id)}"))

    async def queue_task(self, queue_id: int) -> dict[str, Any]:
        return dict(await self._data("GET", f"/queue/{int(queue_id)}"))

    # --- users --------------------------------------------------------------------------------------

    async def user_by_ext(self, ext_relation_id: int) -> dict[str, Any]:
        return dict(await self._data("GET", f"/users/{int(ext_relation_id)}/byExtRelation"))

    async def create_user(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return dict(await self._data("POST", "/users", json=dict(body)))

    async def reset_user_password(self, ext_relation_id: int) -> dict[str, Any]:
        """New panel login password for the user (``data.email``, ``data.password``)."""
        data = dict(await self._data("POST", f"/users/{int(ext_relation_id)}/byExtRelation/resetPassword"))
        self.add_secret(str(data.get("password") or ""))
        return data

    async def server_login_tokens(self, ext_relation_id: int, server_id: int) -> dict[str, Any]:
        path = f"/users/{int(ext_relation_id)}/serverAuthenticationTokens/{int(server_id)}"
        return dict(await self._data("POST", path))

    async def ssh_keys_for_user(self, user_id: int) -> list[dict[str, Any]]:
        return list(await self._data("GET", f"/ssh_keys/user/{int(user_id)}"))

    async def create_ssh_key(self, user_id: int, name: str, public_key: str) -> dict[str, Any]:
        body = {"userId": int(user_id), "name": name, "publicKey": public_key}
        return dict(await self._data("POST", "/ssh_keys", json=body))

    # --- servers ------------------------------------------------------------------------------------

    async def create_server(self, body: Mapping[str, Any], *, dry_run: bool = False) -> Any:
        """``POST /servers``; with ``dry_run`` the panel validates without creating (answer varies)."""
        params = {"dryRun": "true"} if dry_run else None
        response = await self._request("POST", "/servers", json=dict(body), params=params)
        return response.data if dry_run else self._unwrap(response)

    async def server(self, server_id: int, *, remote_state: bool = False) -> dict[str, Any]:
        params = {"remoteState": "true"} if remote_state else None
        return dict(await self._data("GET", f"/servers/{int(server_id)}", params=params))

    async def build(self, server_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /servers/{id}/build``; the answer carries ``settings.decryptedPassword``."""
        data = dict(await self._data("POST", f"/servers/{int(server_id)}/build", json=dict(body)))
        settings = data.get("settings") or {}
        if isinstance(settings, dict):
            self.add_secret(str(settings.get("decryptedPassword") or ""))
        return data

    async def delete_server(self, server_id: int, *, delay_minutes: int = 0) -> None:
        await self._request(
            "DELETE", f"/servers/{int(server_id)}", params={"delay": int(delay_minutes)}, expect_json=False
        )

    async def suspend(self, server_id: int) -> None:
        await self._request("POST", f"/servers/{int(server_id)}/suspend", expect_json=False, idempotent=True)

    async def unsuspend(self, server_id: int) -> None:
        await self._request(
            "POST", f"/servers/{int(server_id)}/unsuspend", expect_json=False, idempotent=True
        )

    async def change_package(
        self, server_id: int, package_id: int, flags: Mapping[str, bool] | None = None
    ) -> list[str]:
        """Move a server to another package; returns the panel's ``info[]`` warnings (may be empty)."""
        path = f"/servers/{int(server_id)}/package/{int(package_id)}"
        response = await self._request("PUT", path, json=dict(flags) if flags else None)
        body = response.data if isinstance(response.data, dict) else {}
        return [str(item) for item in body.get("info") or []]

    async def modify(self, server_id: int, field: ModifyField, value: int) -> None:
        """``PUT /servers/{id}/modify/{field}`` with the body the spec defines.

        The names and types differ per field and were the source of real bugs: CPU takes ``cores``
        (not ``cpuCores``) and traffic is declared as a string of GB (0 = unmetered).
        """
        body: dict[str, Any]
        if field == "cpuCores":
            body = {"cores": int(value)}
        elif field == "traffic":
            body = {"traffic": str(int(value))}
        else:
            body = {"memory": int(value)}
        await self._request("PUT", f"/servers/{int(server_id)}/modify/{field}", json=body, expect_json=False)

    async def rename(self, server_id: int, name: str) -> None:
        await self._request(
            "PUT", f"/servers/{int(server_id)}/modify/name", json={"name": name}, expect_json=False
        )

    async def reset_password(self, server_id: int, *, user: str, send_mail: bool) -> dict[str, Any]:
        body = {"user": user, "sendMail": bool(send_mail)}
        data = dict(await self._data("POST", f"/servers/{int(server_id)}/resetPassword", json=body))
        self.add_secret(str(data.get("expectedPassword") or ""))
        return data

    async def power(self, server_id: int, verb: PowerVerb) -> dict[str, Any]:
        return dict(await self._data("POST", f"/servers/{int(server_id)}/power/{verb}"))

    async def vnc(self, server_id: int) -> dict[str, Any]:
        return dict(await self._data("GET", f"/servers/{int(server_id)}/vnc"))

    async def vnc_action(self, server_id: int, action: Literal["enable", "disable"]) -> dict[str, Any]:
        """Enable (or disable) the console; every ``enable`` rotates the websocket token."""
        data = dict(await self._data("POST", f"/servers/{int(server_id)}/vnc", json={"action": action}))
        vnc = data.get("vnc") or {}
        if isinstance(vnc, dict):
            self.add_secret(str(vnc.get("password") or ""))
        return data

    async def traffic(self, server_id: int) -> dict[str, Any]:
        return dict(await self._data("GET", f"/servers/{int(server_id)}/traffic"))

    async def traffic_blocks(self, server_id: int) -> dict[str, Any]:
        return dict(await self._data("GET", f"/servers/{int(server_id)}/traffic/blocks"))

    async def add_traffic_block(self, server_id: int, *, month: int, amount_gb: int) -> None:
        body = {"month": int(month), "amount": int(amount_gb)}
        await self._request("POST", f"/servers/{int(server_id)}/traffic/blocks", json=body, expect_json=False)

    async def remove_traffic_block(self, server_id: int, block_id: int) -> None:
        await self._request(
            "DELETE", f"/servers/{int(server_id)}/traffic/blocks/{int(block_id)}", expect_json=False
        )

    async def backups(self, server_id: int) -> list[dict[str, Any]]:
        return list(await self._data("GET", f"/backups/server/{int(server_id)}"))

    async def add_ipv4_quantity(
        self, server_id: int, quantity: int, *, interface: str = "primary"
    ) -> list[str]:
        body = {"interface": interface, "quantity": int(quantity)}
        return [str(a) for a in await self._data("POST", f"/servers/{int(server_id)}/ipv4Qty", json=body)]

    async def remove_ipv4(self, server_id: int, addresses: list[str], *, interface: str = "primary") -> None:
        body = {"interface": interface, "ip": list(addresses)}
        await self._request("DELETE", f"/servers/{int(server_id)}/ipv4", json=body, expect_json=False)

    # --- self service -------------------------------------------------------------------------------

    async def self_service_usage(self, ext_relation_id: int, *, range_: str | None = None) -> dict[str, Any]:
        params = {"range": range_} if range_ else None
        path = f"/selfService/usage/byUserExtRelationId/{int(ext_relation_id)}"
        return dict(await self._data("GET", path, params=params))

    async def self_service_report(self, ext_relation_id: int, *, period: int | None = None) -> dict[str, Any]:
        params = {"period": int(period)} if period is not None else None
        path = f"/selfService/report/byUserExtRelationId/{int(ext_relation_id)}"
        return dict(await self._data("GET", path, params=params))

    async def hourly_stats(self, ext_relation_id: int) -> dict[str, Any]:
        path = f"/selfService/hourlyStats/byUserExtRelationId/{int(ext_relation_id)}"
        return dict(await self._data("GET", path))

    async def add_credit(
        self, ext_relation_id: int, tokens: float, *, reference_1: int | None = None, reference_2: str = ""
    ) -> int:
        """Add self-service credit; returns the credit id. ``reference_1`` must be an integer (spec)."""
        body: dict[str, Any] = {"tokens": tokens}
        if reference_1 is not None:
            body["reference_1"] = int(reference_1)
        if reference_2:
            body["reference_2"] = reference_2[:1000]
        path = f"/selfService/credit/byUserExtRelationId/{int(ext_relation_id)}"
        data = await self._data("POST", path, json=body)
        return int(data["id"])
