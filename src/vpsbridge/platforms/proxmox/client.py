"""HTTP client for the Proxmox VE API (``/api2/json``), built on :class:`UpstreamClient`.

What Proxmox needs beyond the shared layer:

* **auth** - an API token (``Authorization: PVEAPIToken=user@realm!id=secret``, no CSRF) for the
  integration, or a ticket (``POST /access/ticket``, cookie + ``CSRFPreventionToken``) for a dedicated
  console user whose tickets the browser console needs;
* **errors** - Proxmox explains failures in the HTTP reason phrase (and, since 8.x, in a ``message``
  field), and parameter errors in a 400 ``errors`` map; the sentences a workflow must act on become
  typed errors (``VmidTaken``, ``ServerLocked``) and "configuration file does not exist" is a confirmed
  missing VM *on that node*;
* **retries** - besides the shared rules, 595/596 (pveproxy could not reach the node) are retried for
  idempotent calls; a POST that creates something is never repeated;
* **a per-node concurrency limit** - each node's pveproxy has three workers; flooding one node with
  parallel deploys makes every call slow;
* **tasks** - UPID parsing and polling, where ``OK`` and ``WARNINGS: n`` are success.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import re
import time
import urllib.parse
from collections.abc import AsyncIterator, Mapping, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httpx2

from vpsbridge.http.client import UpstreamClient, _RetryableError
from vpsbridge.http.errors import (
    UpstreamError,
    UpstreamMalformed,
    UpstreamNotFound,
    UpstreamUnavailable,
)
from vpsbridge.http.record import Recorder
from vpsbridge.platforms.errors import InvalidRequest, ServerLocked
from vpsbridge.platforms.proxmox.errors import TaskFailed, TaskTimeout, VmidTaken
from vpsbridge.platforms.proxmox.upid import exit_ok, parse_upid

#: pveproxy answers these when the node that owns the resource cannot be reached.
PROXY_RETRY_STATUSES = frozenset({595, 596})
#: Tickets live two hours; renew well before.
TICKET_LIFETIME_S = 90 * 60

_MISSING_RE = re.compile(r"Configuration file '[^']*qemu-server/\d+\.conf' does not exist|no such task")
_TAKEN_RE = re.compile(r"VM \d+ already exists|config file already exists")
_LOCKED_RE = re.compile(r"VM is locked|can't lock file .* got timeout|is locked \(", re.IGNORECASE)
#: Sentences of HTTP 500 answers that are definite refusals (state or request is wrong), not outages.
#: Anything not listed stays "unknown", the safe default.
_REFUSED_RE = re.compile(
    r"is running - destroy failed|can't clone VM to node|uses local storage|not running$|already running"
    r"|is not online|can't migrate running VM|shrinking disks is not supported|protection mode enabled"
    r"|you can't |not enough free space|does not support vm images|no such cluster node"
    r"|storage '[^']+' does not exist|disk '[^']+' does not exist|IPSet '[^']+' already exists"
    r"|no such IPSet|not allowed for linked clones"
    r"|is already in use in VM|cannot move |cannot attach a disk|either set 'storage' or 'target-vmid'"
)
_RETRY_LATER_RE = re.compile(r"detected modified configuration")
_NODE_RE = re.compile(r"^/nodes/([^/]+)")
_logging_in: contextvars.ContextVar[bool] = contextvars.ContextVar("proxmox_logging_in", default=False)


def encode_sshkeys(keys: Sequence[str] | str) -> str:
    """The ``sshkeys`` value Proxmox accepts: the key text percent-encoded with nothing left literal.

    Proxmox validates the *decoded form field* against ``^[-%a-zA-Z0-9_.!~*'()]*$``, so the keys are
    encoded once here and the form layer encodes the ``%`` signs again on the wire. ``quote`` with
    ``safe=""`` (not ``quote_plus``: ``+`` would be rejected) leaves only those characters literal.
    """
    text = keys if isinstance(keys, str) else "\n".join(k.strip() for k in keys if k.strip())
    return urllib.parse.quote(text, safe="")


def decode_sshkeys(value: str | None) -> list[str]:
    """The keys stored in a VM config (percent-encoded) as a list of lines."""
    if not value:
        return []
    return [line for line in urllib.parse.unquote(value).splitlines() if line.strip()]


def form_value(value: Any) -> str:
    """Proxmox's form encoding of one parameter value (booleans as 0/1)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def encode_params(params: Mapping[str, Any] | None) -> dict[str, str]:
    """Drop ``None`` values and encode the rest as Proxmox expects them in a form or query string."""
    return {k: form_value(v) for k, v in (params or {}).items() if v is not None}


class ProxmoxClient(UpstreamClient):
    """Typed access to one Proxmox VE cluster; every call returns the ``data`` member of the envelope."""

    def __init__(
        self,
        url: str,
        *,
        token_id: str | None = None,
        token_secret: str | None = None,
        username: str | None = None,
        password: str | None = None,
        verify: bool | str | Path = True,
        transport: httpx2.AsyncBaseTransport | None = None,
        recorder: Recorder | None = None,
        node_concurrency: int = 4,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_retries: int = 2,
        retry_wait_initial: float = 0.25,
        retry_wait_max: float = 5.0,
        name: str = "proxmox",
    ) -> None:
        if bool(token_id) == bool(username):
            raise ValueError("give either an API token (token_id + token_secret) or a username + password")
        auth: dict[str, str] = {}
        if token_id:
            if not token_secret:
                raise ValueError("the API token secret is missing")
            auth["Authorization"] = f"PVEAPIToken={token_id}={token_secret}"
        base = url.rstrip("/")
        if not base.endswith("/api2/json"):
            base += "/api2/json"
        super().__init__(
            base,
            name=name,
            auth_headers=auth,
            verify=verify,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            transport=transport,
            recorder=recorder,
            secrets=[s for s in (token_secret, password) if s],
            max_retries=max_retries,
            retry_wait_initial=retry_wait_initial,
            retry_wait_max=retry_wait_max,
        )
        self.token_id = token_id
        self.username = username
        self._password = password
        self._ticket: tuple[str, str, float] | None = None
        self._login_lock = asyncio.Lock()
        self.node_concurrency = max(1, node_concurrency)
        self._node_limits: dict[str, asyncio.Semaphore] = {}
        self._version: tuple[int, int] | None = None

    # --- auth ---------------------------------------------------------------------------------------

    async def request_headers(self) -> Mapping[str, str]:
        if self.token_id or _logging_in.get():
            return self._auth_headers
        ticket = self._ticket
        if ticket is None or ticket[2] < time.monotonic():
            ticket = await self.login()
        return {"Cookie": f"PVEAuthCookie={ticket[0]}", "CSRFPreventionToken": ticket[1]}

    async def login(self) -> tuple[str, str, float]:
        """Get a ticket for the user (ticket auth only); concurrent callers share one login."""
        async with self._login_lock:
            if self._ticket is not None and self._ticket[2] >= time.monotonic():
                return self._ticket
            token = _logging_in.set(True)
            try:
                data = await self.call(
                    "POST",
                    "/access/ticket",
                    {"username": self.username, "password": self._password},
                    idempotent=True,
                )
            finally:
                _logging_in.reset(token)
            if not isinstance(data, dict) or not data.get("ticket"):
                raise UpstreamMalformed(f"{self.name}: login answered without a ticket", client=self.name)
            ticket = str(data["ticket"])
            csrf = str(data.get("CSRFPreventionToken") or "")
            self.add_secret(ticket, csrf)
            self._ticket = (ticket, csrf, time.monotonic() + TICKET_LIFETIME_S)
            return self._ticket

    # --- error interpretation ------------------------------------------------------------------------

    def error_message(self, response: httpx2.Response) -> str | None:
        parts: list[str] = []
        reason = response.reason_phrase or ""
        try:
            standard = HTTPStatus(response.status_code).phrase
        except ValueError:
            standard = ""
        if reason and reason != standard:
            parts.append(reason.strip())
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            message = body.get("message")
            if isinstance(message, str) and message.strip() and message.strip() not in parts:
                parts.append(message.strip())
            errors = body.get("errors")
            if isinstance(errors, dict) and errors:
                if not parts:
                    parts.append("Parameter verification failed.")
                parts.append("; ".join(f"{k}: {str(v).strip()}" for k, v in list(errors.items())[:8]))
        elif not parts:
            return super().error_message(response)
        return " - ".join(parts) or None

    def is_missing(self, response: httpx2.Response) -> bool:
        if response.status_code in (404, 410):
            return True
        if response.status_code != 500:
            return False
        return bool(_MISSING_RE.search(self.error_message(response) or ""))

    def _map_error(self, method: str, url: str, response: httpx2.Response, body: str | None) -> UpstreamError:
        error = super()._map_error(method, url, response, body)
        if isinstance(error, UpstreamNotFound):
            return error
        text = self.error_message(response) or ""
        kwargs: dict[str, Any] = {
            "client": self.name,
            "method": method,
            "url": url,
            "status": response.status_code,
            "body": body,
        }
        if _TAKEN_RE.search(text) and response.status_code < 501:
            return VmidTaken(error.message, **kwargs)
        if (_LOCKED_RE.search(text) or _RETRY_LATER_RE.search(text)) and response.status_code < 501:
            return ServerLocked(error.message, **kwargs)
        if response.status_code == 500 and _REFUSED_RE.search(text):
            return InvalidRequest(error.message, **kwargs)
        return error

    async def _attempt(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return await super()._attempt(method, path, **kwargs)
        except UpstreamUnavailable as exc:
            if exc.status in PROXY_RETRY_STATUSES:
                raise _RetryableError(exc) from None
            raise

    # --- calls ----------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _node_slot(self, path: str) -> AsyncIterator[None]:
        match = _NODE_RE.match(path)
        if match is None:
            yield
            return
        node = match[1]
        limit = self._node_limits.get(node)
        if limit is None:
            limit = self._node_limits[node] = asyncio.Semaphore(self.node_concurrency)
        async with limit:
            yield

    async def call(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotent: bool | None = None,
        timeout: float | None = None,
    ) -> Any:
        """One API call; returns ``data`` from the ``{"data": ...}`` envelope.

        GET and DELETE send parameters in the query string, POST and PUT as a form, as pveproxy
        expects. ``idempotent`` marks a POST that is safe to repeat (the shared rule retries only
        those).
        """
        method = method.upper()
        encoded = encode_params(params)
        query = encoded if method in ("GET", "DELETE") else None
        form = encoded if method in ("POST", "PUT") else None
        async with self._node_slot(path):
            response = await self._request(
                method, path, params=query, data=form, idempotent=idempotent, timeout=timeout
            )
        body = response.data
        if not isinstance(body, dict) or "data" not in body:
            raise UpstreamMalformed(
                f"{self.name}: {method} {response.url} answered without a data envelope",
                client=self.name,
                method=method,
                url=response.url,
                status=response.status,
            )
        return body["data"]

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return await self.call("GET", path, params)

    async def post(
        self, path: str, params: Mapping[str, Any] | None = None, *, idempotent: bool = False
    ) -> Any:
        return await self.call("POST", path, params, idempotent=idempotent)

    async def put(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return await self.call("PUT", path, params)

    async def delete(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return await self.call("DELETE", path, params)

    # --- version ---------------------------------------------------------------------------------------

    async def version(self) -> dict[str, Any]:
        data = await self.get("/version")
        if not isinstance(data, dict):
            raise UpstreamMalformed(f"{self.name}: /version answered {data!r}", client=self.name)
        self._version = parse_version(str(data.get("version", "")))
        return data

    async def major_version(self) -> int:
        if self._version is None:
            await self.version()
        assert self._version is not None
        return self._version[0]

    # --- tasks -----------------------------------------------------------------------------------------

    async def task_status(self, upid: str) -> dict[str, Any]:
        parsed = parse_upid(upid)
        path = f"/nodes/{parsed.node}/tasks/{urllib.parse.quote(upid, safe='')}/status"
        data = await self.get(path)
        if not isinstance(data, dict):
            raise UpstreamMalformed(f"{self.name}: task status answered {data!r}", client=self.name)
        return data

    async def task_log(self, upid: str, *, start: int = 0, limit: int = 50) -> list[str]:
        parsed = parse_upid(upid)
        path = f"/nodes/{parsed.node}/tasks/{urllib.parse.quote(upid, safe='')}/log"
        data = await self.get(path, {"start": start, "limit": limit})
        return [str(line.get("t", "")) for line in data or [] if isinstance(line, dict)]

    async def wait_task(
        self,
        upid: str,
        *,
        timeout: float = 600.0,
        interval: float = 1.0,
        max_interval: float = 5.0,
    ) -> dict[str, Any]:
        """Poll until the task stops; return its status or raise ``TaskFailed`` / ``TaskTimeout``."""
        deadline = time.monotonic() + timeout
        delay = interval
        while True:
            status = await self.task_status(upid)
            if status.get("status") == "stopped":
                exitstatus = str(status.get("exitstatus") or "")
                if exit_ok(exitstatus):
                    return status
                tail: tuple[str, ...] = ()
                with contextlib.suppress(UpstreamError):
                    lines = await self.task_log(upid, limit=500)
                    tail = tuple(lines[-10:])
                raise TaskFailed(
                    f"{self.name}: task {parse_upid(upid).type} failed: {exitstatus or 'unknown error'}",
                    upid=upid,
                    exitstatus=exitstatus,
                    log_tail=tail,
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TaskTimeout(f"{self.name}: task {upid} still running after {timeout:g}s", upid=upid)
            await asyncio.sleep(min(delay, remaining))
            delay = min(max_interval, delay * 1.5)


def parse_version(text: str) -> tuple[int, int]:
    """``(major, minor)`` of a Proxmox version string such as ``8.2.4`` or ``9.1``."""
    match = re.match(r"^(\d+)(?:\.(\d+))?", text.strip())
    if not match:
        raise UpstreamMalformed(f"proxmox: unreadable version {text!r}", client="proxmox")
    return int(match[1]), int(match[2] or 0)
