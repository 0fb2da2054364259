"""Cloudflare DNS (API v4) provider.

Cloudflare stores single records, not rrsets, names and content without the trailing dot, and has a
batch endpoint that runs deletes, patches, puts and posts in one transaction. We read a zone's records
once, work out the smallest set of operations that turns each rrset into the wanted one (reusing record
ids rather than delete + create), and send them in as few batches as the plan's limit allows.

Its rate limit is harsh (1,200 requests per five minutes, then *everything* is refused for minutes),
so a 429's ``Retry-After`` is honoured, also for the POSTs that the HTTP layer never repeats on its own:
a 429 means the request was not executed, so sending it again is safe.

Reverse zones exist on Cloudflare only for whole octets or nibbles; there is no RFC 2317 support.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import httpx2

from vpsbridge.core.ipam import normalize_name, zone_name_problems
from vpsbridge.dns.base import (
    ConnectionReport,
    DnsProvider,
    ZoneInfo,
    setting_bool,
    setting_float,
    setting_int,
)
from vpsbridge.dns.errors import (
    DnsAuthFailed,
    DnsConfigError,
    DnsError,
    DnsRecordRejected,
    DnsUnavailable,
    translate,
)
from vpsbridge.dns.records import ApplyResult, Change, RRset, dedupe_changes, normalize_content
from vpsbridge.http import Recorder, UpstreamClient, UpstreamError, UpstreamRateLimited, UpstreamResponse

DEFAULT_URL = "https://api.cloudflare.com/client/v4"
PROXIABLE = frozenset({"A", "AAAA", "CNAME"})
AUTH_HINT = "the API token needs Zone:Read and DNS:Edit permissions on the zones"


class CloudflareClient(UpstreamClient):
    """Speaks the ``{success, errors, messages, result, result_info}`` envelope."""

    calls = 0

    def error_message(self, response: httpx2.Response) -> str | None:
        try:
            body = response.json()
        except ValueError:
            return super().error_message(response)
        errors = body.get("errors") if isinstance(body, dict) else None
        if not errors:
            return super().error_message(response)
        parts = []
        for error in errors[:5]:
            text = f"{error.get('message', 'error')} (code {error.get('code')})"
            chain = [e.get("message", "") for e in error.get("error_chain") or []]
            parts.append(text + (": " + "; ".join(chain) if chain else ""))
        return "; ".join(parts)

    async def call(self, method: str, path: str, **kwargs: Any) -> UpstreamResponse:
        self.calls += 1
        return await self._request(method, path, **kwargs)


@dataclass(frozen=True, slots=True)
class _Record:
    id: str
    name: str
    type: str
    content: str
    ttl: int
    comment: str | None


def _bare(name: str) -> str:
    return normalize_name(name).rstrip(".")


class CloudflareProvider(DnsProvider):
    TYPE = "cloudflare"
    LABEL = "Cloudflare"
    SUPPORTS = frozenset({"A", "AAAA", "PTR", "CNAME", "TXT", "MX", "NS", "CAA", "SRV"})
    SUPPORTS_CLASSLESS = frozenset()
    SUPPORTS_BATCH = True
    SUPPORTS_NOTIFY = False
    CREDENTIAL_FIELDS = ("api_token",)

    def __init__(
        self,
        client: CloudflareClient,
        *,
        account_id: str | None = None,
        batch_limit: int = 200,
        rate_limit_retries: int = 3,
        retry_after_max: float = 60.0,
        zone_cache_seconds: float = 300.0,
        default_ttl: int = 3600,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name, default_ttl=default_ttl, zone_cache_seconds=zone_cache_seconds)
        self.client = client
        self.account_id = account_id
        self.batch_limit = max(1, batch_limit)
        self.rate_limit_retries = rate_limit_retries
        self.retry_after_max = retry_after_max

    @classmethod
    def from_config(
        cls,
        *,
        url: str | None,
        credentials: Mapping[str, str],
        settings: Mapping[str, Any],
        recorder: Recorder | None = None,
        transport: Any = None,
    ) -> Self:
        token = str(credentials.get("api_token") or "").strip()
        email = str(credentials.get("email") or "").strip()
        global_key = str(credentials.get("api_key") or "").strip()
        if token:
            auth = {"Authorization": f"Bearer {token}"}
        elif email and global_key:
            auth = {"X-Auth-Email": email, "X-Auth-Key": global_key}
        else:
            raise DnsConfigError("Cloudflare: an API token (api_token) is required")
        retry_after_max = setting_float(settings, "retry_after_max", 60.0)
        client = CloudflareClient(
            (url or DEFAULT_URL).strip().rstrip("/"),
            name="cloudflare",
            auth_headers=auth,
            connect_timeout=setting_float(settings, "connect_timeout", 5.0),
            read_timeout=setting_float(settings, "read_timeout", 30.0),
            verify=setting_bool(settings, "verify_tls", True),
            transport=transport,
            recorder=recorder,
            secrets=[s for s in (token, global_key) if s],
            max_retries=setting_int(settings, "max_retries", 2),
            retry_after_max=retry_after_max,
        )
        return cls(
            client,
            account_id=str(settings.get("account_id") or "").strip() or None,
            batch_limit=setting_int(settings, "batch_limit", 200),
            rate_limit_retries=setting_int(settings, "rate_limit_retries", 3),
            retry_after_max=retry_after_max,
            zone_cache_seconds=setting_float(settings, "zone_cache_seconds", 300.0),
            default_ttl=setting_int(settings, "default_ttl", 3600),
            name=str(settings.get("name") or "cloudflare"),
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _call(
        self, method: str, path: str, *, zone: str | None = None, **kwargs: Any
    ) -> UpstreamResponse:
        attempt = 0
        while True:
            try:
                return await self.client.call(method, path, **kwargs)
            except UpstreamRateLimited as exc:
                # GET/PUT/DELETE were already retried by the HTTP layer; a POST was not, and may be:
                # a 429 guarantees the request was not executed.
                wait = exc.retry_after if exc.retry_after is not None else 1.0
                if method != "POST" or attempt >= self.rate_limit_retries or wait > self.retry_after_max:
                    raise translate(
                        exc, provider=self.name, zone=zone, hint="Cloudflare rate limit"
                    ) from None
                attempt += 1
                await asyncio.sleep(wait)
            except UpstreamError as exc:
                hint = AUTH_HINT if exc.outcome == "auth" else ""
                raise translate(exc, provider=self.name, zone=zone, hint=hint) from None

    async def _paged(
        self, path: str, params: Mapping[str, Any], *, zone: str | None = None
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            response = await self._call("GET", path, zone=zone, params={**params, "page": page})
            body = response.data if isinstance(response.data, dict) else {}
            result = body.get("result")
            if not isinstance(result, list):
                raise DnsUnavailable(
                    f"Cloudflare: {path} did not return a list", provider=self.name, zone=zone
                )
            items.extend(r for r in result if isinstance(r, dict))
            info = body.get("result_info") or {}
            total_pages = int(info.get("total_pages") or 1)
            if page >= total_pages or not result:
                return items
            page += 1

    # --- zones ----------------------------------------------------------------------------------

    async def _list_zones(self) -> list[ZoneInfo]:
        params: dict[str, Any] = {"per_page": 50}
        if self.account_id:
            params["account.id"] = self.account_id
        items = await self._paged("/zones", params)
        return [
            ZoneInfo(name=normalize_name(str(z["name"])), id=str(z["id"]), kind=z.get("status"), extra=z)
            for z in items
            if z.get("name") and z.get("id")
        ]

    # --- records --------------------------------------------------------------------------------

    async def _records(
        self, info: ZoneInfo, name: str | None = None, rtype: str | None = None
    ) -> list[_Record]:
        params: dict[str, Any] = {"per_page": 100}
        if name:
            params["name"] = _bare(name)
        if rtype:
            params["type"] = rtype
        items = await self._paged(f"/zones/{info.id}/dns_records", params, zone=info.name)
        records = []
        for item in items:
            rtype_ = str(item.get("type", "")).upper()
            try:
                content = normalize_content(rtype_, str(item.get("content", "")))
            except ValueError:
                content = str(item.get("content", ""))
            records.append(
                _Record(
                    id=str(item["id"]),
                    name=normalize_name(str(item["name"])),
                    type=rtype_,
                    content=content,
                    ttl=int(item.get("ttl") or 1),
                    comment=item.get("comment") or None,
                )
            )
        return records

    @staticmethod
    def _group(records: list[_Record]) -> dict[tuple[str, str], list[_Record]]:
        grouped: dict[tuple[str, str], list[_Record]] = {}
        for record in records:
            grouped.setdefault((record.name, record.type), []).append(record)
        return grouped

    @staticmethod
    def _as_rrset(records: list[_Record]) -> RRset:
        first = records[0]
        return RRset(
            name=first.name,
            type=first.type,
            ttl=first.ttl,
            records=tuple(sorted({r.content for r in records})),
            comment=first.comment,
        )

    async def get_rrset(self, zone: str, name: str, rtype: str) -> RRset | None:
        info = await self.zone(zone)
        records = await self._records(info, name, rtype.upper())
        wanted = (normalize_name(name), rtype.upper())
        matching = [r for r in records if (r.name, r.type) == wanted]
        return self._as_rrset(matching) if matching else None

    async def get_rrsets(
        self, zone: str, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], RRset | None]:
        wanted = [(normalize_name(n), t.upper()) for n, t in keys]
        if len(wanted) <= 3:
            return await super().get_rrsets(zone, wanted)
        grouped: dict[tuple[str, str], list[_Record]] = {}
        info = await self.zone(zone)
        for record in await self._records(info):
            grouped.setdefault((record.name, record.type), []).append(record)
        return {key: self._as_rrset(grouped[key]) if key in grouped else None for key in wanted}

    @staticmethod
    def _body(change: Change, content: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": change.type,
            "name": change.name.rstrip("."),
            "content": content.rstrip(".") if change.type in ("PTR", "CNAME", "NS") else content,
            "ttl": change.ttl,
        }
        if change.type in PROXIABLE:
            body["proxied"] = False
        if change.comment is not None:
            body["comment"] = change.comment
        return body

    def _plan(self, change: Change, current: list[_Record]) -> dict[str, list[dict[str, Any]]]:
        """Operations that make ``current`` (one rrset's records) equal to ``change``."""
        ops: dict[str, list[dict[str, Any]]] = {"deletes": [], "patches": [], "puts": [], "posts": []}
        if change.action == "delete":
            ops["deletes"] = [{"id": r.id} for r in current]
            return ops
        wanted = list(change.records)
        extras = []
        for record in current:
            if record.content in wanted:
                wanted.remove(record.content)
                stale = record.ttl != change.ttl or (
                    change.comment is not None and (record.comment or "") != change.comment
                )
                if stale:
                    patch: dict[str, Any] = {"id": record.id, "ttl": change.ttl}
                    if change.comment is not None:
                        patch["comment"] = change.comment
                    ops["patches"].append(patch)
            else:
                extras.append(record)
        for record, content in zip(extras, wanted, strict=False):
            ops["puts"].append({"id": record.id, **self._body(change, content)})
        ops["deletes"] = [{"id": r.id} for r in extras[len(wanted) :]]
        ops["posts"] = [self._body(change, content) for content in wanted[len(extras) :]]
        return ops

    async def _send(self, info: ZoneInfo, ops: dict[str, list[dict[str, Any]]]) -> None:
        payload = {key: value for key, value in ops.items() if value}
        if payload:
            await self._call("POST", f"/zones/{info.id}/dns_records/batch", zone=info.name, json=payload)

    def _chunks(self, planned: list[tuple[Change, dict[str, list[dict[str, Any]]]]]) -> list[list[int]]:
        """Change indexes in batches of at most ``batch_limit`` operations (a change is never split)."""
        chunks: list[list[int]] = [[]]
        size = 0
        for index, (_, ops) in enumerate(planned):
            count = sum(len(v) for v in ops.values())
            if chunks[-1] and size + count > self.batch_limit:
                chunks.append([])
                size = 0
            chunks[-1].append(index)
            size += count
        return [c for c in chunks if c]

    async def apply(self, zone: str, changes: Sequence[Change]) -> ApplyResult:
        info = await self.zone(zone)
        self.check_changes_supported(info.name, changes)
        batch = dedupe_changes(list(changes))
        result = ApplyResult(zone=info.name)
        started = self.client.calls
        try:
            if not batch:
                return result
            if len(batch) == 1:
                records = await self._records(info, batch[0].name, batch[0].type)
            else:
                records = await self._records(info)
            grouped = self._group(records)
            planned = []
            for change in batch:
                current = grouped.get(change.key, [])
                if change.satisfied_by(self._as_rrset(current) if current else None):
                    result.unchanged.append(change)
                else:
                    planned.append((change, self._plan(change, current)))
            for chunk in self._chunks(planned):
                merged: dict[str, list[dict[str, Any]]] = {
                    "deletes": [],
                    "patches": [],
                    "puts": [],
                    "posts": [],
                }
                for index in chunk:
                    for key, items in planned[index][1].items():
                        merged[key].extend(items)
                try:
                    await self._send(info, merged)
                    result.applied.extend(planned[i][0] for i in chunk)
                except DnsRecordRejected as exc:
                    if len(chunk) == 1:
                        result.failed.append((planned[chunk[0]][0], str(exc)))
                        continue
                    # The batch is one transaction: find the culprit, keep the rest.
                    result.messages.append(f"batch refused ({exc}); retrying record by record")
                    for index in chunk:
                        change, own = planned[index]
                        try:
                            await self._send(info, own)
                            result.applied.append(change)
                        except DnsRecordRejected as single:
                            result.failed.append((change, str(single)))
            return result
        finally:
            result.requests = self.client.calls - started

    # --- test connection ------------------------------------------------------------------------

    async def test_connection(self) -> ConnectionReport:
        try:
            verify = await self._call("GET", "/user/tokens/verify")
            zones = await self.zones(refresh=True)
        except DnsAuthFailed as exc:
            return ConnectionReport(False, f"Cloudflare refused the token: {exc}")
        except DnsError as exc:
            return ConnectionReport(False, f"cannot talk to the Cloudflare API: {exc}")
        status = ((verify.data or {}).get("result") or {}).get("status")
        report = ConnectionReport(
            status in (None, "active"),
            f"Cloudflare API v4, token {status or 'accepted'}, {len(zones)} zone(s)",
            version="v4",
            zones=[z.name for z in zones],
        )
        report.warnings.extend(zone_name_problems(report.zones))
        for info in zones:
            if info.kind not in (None, "active"):
                report.warnings.append(
                    f"{info.name} is {info.kind} on Cloudflare: records are saved but not served until the "
                    "zone is active"
                )
        return report
