"""The base class of every upstream API client: one ``_request()`` choke point.

VirtFusion, Proxmox, PowerDNS, Cloudflare, HestiaCP and WHMCS clients subclass
:class:`UpstreamClient` and call ``self._request(...)`` for every HTTP exchange, so that the
cross-cutting rules live in exactly one place:

* **timeouts** - connect and read separately (a dead host fails fast; a slow task list may take time);
* **retries** - only for idempotent requests (GET/HEAD/PUT/DELETE/OPTIONS, or ``idempotent=True``), on
  connection errors, timeouts, 502/503/504 and 429 (whose ``Retry-After`` is honoured, capped), with
  exponential backoff and jitter (stamina). A POST is never repeated behind the caller's back: a
  duplicated "create server" costs the operator real money;
* **error mapping** into the tri-state: value / confirmed missing / unknown (see
  :mod:`vpsbridge.http.errors`), with the vendor's own error message extracted by an overridable hook;
* **redaction** of secrets in everything logged or recorded (:mod:`vpsbridge.http.redact`);
* **observability** - one structlog line, one Prometheus observation and one
  :class:`~vpsbridge.http.record.UpstreamRecord` per attempt.
"""

from __future__ import annotations

import datetime as dt
import json as jsonlib
import ssl
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Self

import httpx2
import stamina
import structlog
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidHandshake, InvalidStatus

from vpsbridge.http import redact
from vpsbridge.http.context import current_job_id
from vpsbridge.http.errors import (
    OutcomeName,
    UpstreamAuthError,
    UpstreamError,
    UpstreamMalformed,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from vpsbridge.http.metrics import UPSTREAM_ERRORS_TOTAL, UPSTREAM_REQUEST_SECONDS
from vpsbridge.http.record import Recorder, UpstreamRecord
from vpsbridge.http.response import UpstreamResponse
from vpsbridge.http.streams import WebSocketStream

log = structlog.stdlib.get_logger("vpsbridge.upstream")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: Transport failures worth another attempt (for idempotent requests only).
RETRY_TRANSPORT_ERRORS = (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); ``None`` if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - _utcnow()).total_seconds())


def _verify_option(verify: bool | str | Path) -> bool | ssl.SSLContext:
    """``True``/``False``, a CA bundle path or PEM text (self-signed Proxmox/VirtFusion certificates)."""
    if isinstance(verify, bool):
        return verify
    text = str(verify)
    if "-----BEGIN" in text:  # the PEM itself, as the catalog stores an uploaded CA certificate
        return ssl.create_default_context(cadata=text)
    return ssl.create_default_context(cafile=text)


class _RetryableError(Exception):
    """Internal carrier: an attempt failed in a way worth retrying; ``error`` is what the caller sees."""

    def __init__(self, error: UpstreamError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class UpstreamClient:
    """Base class for upstream API clients; subclasses add typed methods on top of :meth:`_request`.

    Hooks for subclasses: :meth:`request_headers` (dynamic auth, e.g. a Proxmox ticket),
    :meth:`error_message` (the vendor's error envelope) and :meth:`is_missing` (vendors that say
    "not found" with something other than 404).
    """

    def __init__(
        self,
        base_url: str,
        *,
        name: str,
        auth_headers: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        verify: bool | str | Path = True,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        transport: httpx2.AsyncBaseTransport | None = None,
        recorder: Recorder | None = None,
        secrets: list[str] | tuple[str, ...] = (),
        max_retries: int = 2,
        retry_wait_initial: float = 0.25,
        retry_wait_max: float = 5.0,
        retry_wait_jitter: float = 0.25,
        retry_after_max: float = 30.0,
        log_body_bytes: int = 4096,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.recorder = recorder
        self.max_retries = max(0, max_retries)
        self.retry_wait_initial = retry_wait_initial
        self.retry_wait_max = retry_wait_max
        self.retry_wait_jitter = retry_wait_jitter
        self.retry_after_max = retry_after_max
        self.log_body_bytes = log_body_bytes
        self._auth_headers = dict(auth_headers or {})
        self._secrets: set[str] = set()
        self.add_secret(*secrets)
        for value in self._auth_headers.values():
            self.add_secret(*redact.secret_parts(value))
        self._verify = _verify_option(verify)
        self._connect_timeout = connect_timeout
        self._http = httpx2.AsyncClient(
            base_url=self.base_url,
            headers={"Accept": "application/json", "User-Agent": "vpsbridge", **(headers or {})},
            verify=self._verify,
            timeout=httpx2.Timeout(
                connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
            ),
            transport=transport,
            follow_redirects=False,
            trust_env=False,
        )

    # --- lifecycle ------------------------------------------------------------------------------

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- secrets ----------------------------------------------------------------------------------

    def add_secret(self, *values: str | None) -> None:
        """Register literal secrets (a token, a root password just generated) for redaction."""
        for value in values:
            if value and len(value) >= redact.MIN_SECRET_LEN:
                self._secrets.add(value)

    @property
    def secrets(self) -> frozenset[str]:
        return frozenset(self._secrets)

    def redact_text(self, text: str) -> str:
        return redact.scrub_text(text, self._secrets)

    # --- hooks for subclasses -------------------------------------------------------------------

    async def request_headers(self) -> Mapping[str, str]:
        """Headers added to every request; default: the static ``auth_headers``."""
        return self._auth_headers

    def is_missing(self, response: httpx2.Response) -> bool:
        """Whether a non-2xx answer confirms that the object does not exist."""
        return response.status_code in (404, 410)

    def error_message(self, response: httpx2.Response) -> str | None:
        """The vendor's explanation of an error, from its JSON envelope or a short text body.

        Understands the common shapes (``message``, ``error``, ``errors`` as list or field map,
        ``detail``, ``msg``); subclasses override it for their vendor's envelope.
        """
        try:
            body = response.json()
        except ValueError:
            text = response.text.strip()
            return text[:300] if text and "<html" not in text[:200].lower() else None
        return _message_from_json(body)

    # --- the choke point --------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        expect_json: bool = True,
        ok_statuses: frozenset[int] | None = None,
        timeout: float | None = None,
    ) -> UpstreamResponse:
        """Send one logical request, retrying when that is safe, and map the result.

        Returns an :class:`UpstreamResponse` for 2xx (and ``ok_statuses``); raises
        :class:`UpstreamNotFound`, :class:`UpstreamAuthError`, :class:`UpstreamRejected` or
        :class:`UpstreamUnavailable` (and its subclasses) otherwise. ``idempotent`` overrides the
        method-based default (a POST that is safe to repeat, a PUT that is not).
        """
        method = method.upper()
        retryable = idempotent if idempotent is not None else method in IDEMPOTENT_METHODS
        attempts = 1 + self.max_retries if retryable else 1
        attempt_no = 0
        try:
            async for attempt in stamina.retry_context(
                on=self._backoff_hook,
                attempts=attempts,
                timeout=None,
                wait_initial=self.retry_wait_initial,
                wait_max=self.retry_wait_max,
                wait_jitter=self.retry_wait_jitter,
            ):
                with attempt:
                    attempt_no += 1
                    return await self._attempt(
                        method,
                        path,
                        attempt_no=attempt_no,
                        params=params,
                        json=json,
                        data=data,
                        content=content,
                        headers=headers,
                        expect_json=expect_json,
                        ok_statuses=ok_statuses or frozenset(),
                        timeout=timeout,
                    )
        except _RetryableError as exc:
            raise exc.error from None
        raise AssertionError("unreachable: stamina made no attempt")  # pragma: no cover

    async def open_websocket(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        subprotocols: tuple[str, ...] = ("binary",),
    ) -> WebSocketStream:
        """Open a websocket (a console stream) with this client's TLS rules, auth and request record.

        ``path`` is relative to the base URL or absolute; the client's auth headers go only to its
        own host, so an absolute URL elsewhere gets none. Never retried: a console ticket is single
        use. A refused upgrade maps like any answer (404 missing, 401/403 auth, 5xx unknown); a
        connection failure or timeout is :class:`UpstreamUnavailable`/:class:`UpstreamTimeout`.
        """
        request = self._http.build_request("GET", path, params=params)
        target = request.url
        headers = {"User-Agent": "vpsbridge"}
        if target.host == httpx2.URL(self.base_url).host:
            headers.update(await self.request_headers())
        ws_url = str(target.copy_with(scheme="wss" if target.scheme == "https" else "ws"))
        url = redact.redact_url(str(target), self._secrets)
        ssl_option: ssl.SSLContext | None = None
        if target.scheme == "https":
            ssl_option = (
                self._verify if isinstance(self._verify, ssl.SSLContext) else ssl.create_default_context()
            )
            if self._verify is False:
                ssl_option.check_hostname = False
                ssl_option.verify_mode = ssl.CERT_NONE
        started = time.perf_counter()
        try:
            connection = await ws_connect(
                ws_url,
                additional_headers=headers,
                subprotocols=[*subprotocols] or None,  # type: ignore[list-item]
                ssl=ssl_option,
                open_timeout=self._connect_timeout,
                proxy=None,
                max_size=None,
                compression=None,
                user_agent_header=None,
            )
        except InvalidStatus as exc:
            duration = time.perf_counter() - started
            answer = exc.response
            response = httpx2.Response(
                answer.status_code,
                headers=list(answer.headers.raw_items()),
                content=bytes(answer.body or b""),
            )
            body = redact.redact_body(
                response.content, response.headers.get("content-type"), self._secrets, self.log_body_bytes
            )
            error = self._map_error("GET", url, response, body)
            self._observe("GET", url, answer.status_code, duration, error.outcome, None, body, str(error), 1)
            raise error from None
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            duration = time.perf_counter() - started
            kind = "timed out" if isinstance(exc, TimeoutError) else "failed"
            message = self.redact_text(f"{self.name}: websocket {url} {kind}: {type(exc).__name__}: {exc}")
            self._observe("GET", url, None, duration, "unknown", None, None, message, 1)
            cls = UpstreamTimeout if isinstance(exc, TimeoutError) else UpstreamUnavailable
            raise cls(message, client=self.name, method="GET", url=url) from None
        self._observe("GET", url, 101, time.perf_counter() - started, "value", None, None, None, 1)
        return WebSocketStream(connection)

    def _backoff_hook(self, exc: Exception) -> bool | float:
        if not isinstance(exc, _RetryableError):
            return False
        if exc.retry_after is not None:
            return min(exc.retry_after, self.retry_after_max)
        return True

    async def _attempt(
        self,
        method: str,
        path: str,
        *,
        attempt_no: int,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None,
        json: Any,
        data: Mapping[str, Any] | None,
        content: bytes | str | None,
        headers: Mapping[str, str] | None,
        expect_json: bool,
        ok_statuses: frozenset[int],
        timeout: float | None,
    ) -> UpstreamResponse:
        merged = {**(await self.request_headers()), **(headers or {})}
        request = self._http.build_request(
            method,
            path,
            params=params,
            json=json,
            data=data,
            content=content,
            headers=merged,
            timeout=timeout if timeout is not None else httpx2.USE_CLIENT_DEFAULT,
        )
        url = redact.redact_url(str(request.url), self._secrets)
        request_body = redact.redact_body(
            request.content, request.headers.get("content-type"), self._secrets, self.log_body_bytes
        )
        started = time.perf_counter()
        try:
            response = await self._http.send(request)
            await response.aread()
        except RETRY_TRANSPORT_ERRORS as exc:
            duration = time.perf_counter() - started
            kind = "timed out" if isinstance(exc, httpx2.TimeoutException) else "connection failed"
            message = self.redact_text(f"{self.name}: {method} {url} {kind}: {type(exc).__name__}: {exc}")
            cls = UpstreamTimeout if isinstance(exc, httpx2.TimeoutException) else UpstreamUnavailable
            transport_error: UpstreamError = cls(message, client=self.name, method=method, url=url)
            self._observe(method, url, None, duration, "unknown", request_body, None, message, attempt_no)
            raise _RetryableError(transport_error) from exc
        except httpx2.HTTPError as exc:  # invalid URL, unsupported protocol, TLS setup ...
            duration = time.perf_counter() - started
            message = self.redact_text(f"{self.name}: {method} {url} failed: {type(exc).__name__}: {exc}")
            self._observe(method, url, None, duration, "unknown", request_body, None, message, attempt_no)
            raise UpstreamUnavailable(message, client=self.name, method=method, url=url) from exc
        duration = time.perf_counter() - started

        status = response.status_code
        response_body = redact.redact_body(
            response.content, response.headers.get("content-type"), self._secrets, self.log_body_bytes
        )
        if 200 <= status < 300 or status in ok_statuses:
            parsed: Any = None
            if expect_json and response.content.strip():
                try:
                    parsed = jsonlib.loads(response.content)
                except ValueError:
                    message = f"{self.name}: {method} {url} answered {status} with a body that is not JSON"
                    self._observe(
                        method,
                        url,
                        status,
                        duration,
                        "unknown",
                        request_body,
                        response_body,
                        message,
                        attempt_no,
                    )
                    raise UpstreamMalformed(
                        message, client=self.name, method=method, url=url, status=status, body=response_body
                    ) from None
            self._observe(
                method, url, status, duration, "value", request_body, response_body, None, attempt_no
            )
            return UpstreamResponse(
                status=status,
                headers={k.lower(): v for k, v in response.headers.items()},
                data=parsed,
                text=response.text,
                url=url,
                elapsed_ms=round(duration * 1000, 3),
            )

        error = self._map_error(method, url, response, response_body)
        self._observe(
            method, url, status, duration, error.outcome, request_body, response_body, str(error), attempt_no
        )
        if status in RETRY_STATUSES:
            retry_after = parse_retry_after(response.headers.get("retry-after")) if status == 429 else None
            raise _RetryableError(error, retry_after)
        raise error

    def _map_error(self, method: str, url: str, response: httpx2.Response, body: str | None) -> UpstreamError:
        status = response.status_code
        vendor = self.error_message(response)
        detail = self.redact_text(vendor) if vendor else None
        base = f"{self.name}: {method} {url} -> {status}"
        message = f"{base}: {detail}" if detail else base
        kwargs: dict[str, Any] = {
            "client": self.name,
            "method": method,
            "url": url,
            "status": status,
            "body": body,
        }
        if self.is_missing(response):
            return UpstreamNotFound(message, **kwargs)
        if status in (401, 403):
            return UpstreamAuthError(message, **kwargs)
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            return UpstreamRateLimited(message, retry_after=retry_after, **kwargs)
        if 400 <= status < 500:
            return UpstreamRejected(message, **kwargs)
        if 300 <= status < 400:
            location = response.headers.get("location")
            if location:
                message += f" (redirect to {redact.redact_url(location, self._secrets)}; check the URL)"
            return UpstreamUnavailable(message, **kwargs)
        return UpstreamUnavailable(message, **kwargs)

    def _observe(
        self,
        method: str,
        url: str,
        status: int | None,
        duration: float,
        outcome: OutcomeName,
        request_body: str | None,
        response_body: str | None,
        error: str | None,
        attempt: int,
    ) -> None:
        """Log line, metrics and request-log record of one attempt; never raises."""
        duration_ms = round(duration * 1000, 3)
        UPSTREAM_REQUEST_SECONDS.labels(self.name, method, outcome).observe(duration)
        if outcome not in ("value", "missing"):
            UPSTREAM_ERRORS_TOTAL.labels(self.name, outcome).inc()
        job_id = current_job_id.get()
        fields: dict[str, Any] = {
            "client": self.name,
            "method": method,
            "url": url,
            "status": status,
            "duration_ms": duration_ms,
            "outcome": outcome,
            "attempt": attempt,
        }
        if job_id is not None:
            fields["job_id"] = job_id
        if error:
            fields["error"] = error
        if outcome in ("value", "missing"):
            log.info("upstream_request", **fields)
        else:
            log.warning("upstream_request", **fields)
        if self.recorder is None:
            return
        record = UpstreamRecord(
            ts=_utcnow(),
            client=self.name,
            method=method,
            url=url,
            status=status,
            duration_ms=duration_ms,
            outcome=outcome,
            request_body=request_body,
            response_body=response_body,
            error=error,
            job_id=job_id,
            attempt=attempt,
        )
        try:
            self.recorder(record)
        except Exception as exc:  # a broken recorder must not break provisioning
            log.warning("upstream_recorder_failed", client=self.name, error=f"{type(exc).__name__}: {exc}")


def _message_from_json(body: Any) -> str | None:
    """Find a human message in the usual JSON error envelopes."""
    if isinstance(body, str):
        return body[:300] or None
    if isinstance(body, list):
        parts = [m for m in (_message_from_json(item) for item in body[:5]) if m]
        return "; ".join(parts) or None
    if not isinstance(body, dict):
        return None
    for key in ("message", "msg", "detail", "error_description", "error", "errors"):
        if key not in body or body[key] in (None, "", [], {}):
            continue
        value = body[key]
        if isinstance(value, dict) and key == "errors":
            # Laravel/VirtFusion/Proxmox style: {"field": ["reason", ...]} or {"field": "reason"}
            parts = []
            for field, reasons in list(value.items())[:5]:
                reason = "; ".join(map(str, reasons)) if isinstance(reasons, list) else str(reasons)
                parts.append(f"{field}: {reason}")
            return "; ".join(parts)
        found = _message_from_json(value)
        if found:
            return found
    return None
