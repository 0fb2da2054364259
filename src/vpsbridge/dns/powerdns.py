"""PowerDNS Authoritative HTTP API provider (tested against a real ``pdns_server`` 4.7).

What the API needs, learnt the hard way by everybody who wrote a client before us:

* zone ids are names with every byte outside ``[A-Za-z0-9.-]`` written as ``=XX`` in *upper-case* hex
  (``0/26.…`` is ``0=2F26.…``); a raw ``/`` breaks ``…/notify`` and ``%2F`` breaks behind proxies, so we
  always use the ``id`` the server returns and only build one (:func:`zone_id`) as a fallback;
* owner names and name-typed content must be canonical FQDNs with a trailing dot, or it answers 422;
* a PATCH bumps the SOA serial (when ``soa_edit_api`` is set) even if nothing changed, so we read first
  and send only rrsets that differ; many rrsets go in *one* PATCH per zone;
* edits never notify secondaries by themselves: an explicit ``PUT …/notify`` follows a change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self
from urllib.parse import quote

import httpx2

from vpsbridge.core.ipam import normalize_name, zone_name_problems
from vpsbridge.dns.base import (
    ALL_CLASSLESS,
    ConnectionReport,
    DnsProvider,
    ZoneInfo,
    credential,
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
    DnsZoneNotFound,
    translate,
)
from vpsbridge.dns.records import ApplyResult, Change, RRset, dedupe_changes, normalize_content
from vpsbridge.http import Recorder, UpstreamClient, UpstreamError, UpstreamNotFound, UpstreamResponse

COMMENT_ACCOUNT = "vpsbridge"
AUTH_CHECKLIST = (
    "check the API key (no stray spaces or newline), that the server has api=yes, and that this "
    "host's address is in the server's webserver-allow-from (api-allow-from on older versions)"
)
#: PowerDNS 422 messages and what an operator should do about them.
REJECTION_HINTS = (
    ("not in expected format", "record content must be canonical: a fully qualified name ending in a dot"),
    ("is not canonical", "names must be fully qualified and end with a dot"),
    ("out of zone", "the record name is not inside this zone; check which zone the address belongs to"),
    (
        "conflicts with pre-existing rrset",
        "another record (usually the CNAME of an RFC 2317 delegation) already exists at this name; "
        "the PTR belongs in the classless zone",
    ),
    ("duplicate", "the same record was sent twice"),
)


def zone_id(name: str) -> str:
    """PowerDNS's id for a zone name: bytes outside ``[A-Za-z0-9.-]`` become ``=XX`` (upper-case hex)."""
    canonical = normalize_name(name)
    if canonical == ".":
        return "=2E"
    out = []
    for char in canonical:
        if char.isascii() and (char.isalnum() or char in ".-"):
            out.append(char)
        else:
            out.extend(f"={byte:02X}" for byte in char.encode())
    return "".join(out)


def rejection_hint(message: str) -> str:
    lowered = message.lower()
    for needle, hint in REJECTION_HINTS:
        if needle in lowered:
            return hint
    return ""


class PowerDnsClient(UpstreamClient):
    """HTTP access to ``/api/v1`` with the API key; counts requests for batching statistics."""

    calls = 0

    def error_message(self, response: httpx2.Response) -> str | None:
        # PowerDNS answers {"error": "..."} for 422 and bare text ("Not Found") for 401/404/409.
        try:
            body = response.json()
        except ValueError:
            text = response.text.strip()
            return text[:300] or None
        if isinstance(body, dict) and body.get("error"):
            return str(body["error"])[:500]
        return super().error_message(response)

    async def call(self, method: str, path: str, **kwargs: Any) -> UpstreamResponse:
        self.calls += 1
        return await self._request(method, path, **kwargs)


def api_base(url: str) -> str:
    """Accept ``http://host:8081``, ``…/api`` or ``…/api/v1`` (all seen in operators' settings)."""
    base = url.strip().rstrip("/")
    for suffix in ("/api/v1", "/api"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base + "/api/v1"


class PowerDnsProvider(DnsProvider):
    TYPE = "powerdns"
    LABEL = "PowerDNS"
    SUPPORTS = frozenset({"A", "AAAA", "PTR", "CNAME", "TXT", "NS", "MX", "SRV", "CAA"})
    SUPPORTS_CLASSLESS = ALL_CLASSLESS
    SUPPORTS_BATCH = True
    SUPPORTS_NOTIFY = True
    CREDENTIAL_FIELDS = ("api_key",)

    def __init__(
        self,
        client: PowerDnsClient,
        *,
        server_id: str = "localhost",
        notify_after_change: bool = True,
        zone_cache_seconds: float = 60.0,
        default_ttl: int = 3600,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name, default_ttl=default_ttl, zone_cache_seconds=zone_cache_seconds)
        self.client = client
        self.server_id = server_id
        self.notify_after_change = notify_after_change
        self._server_path = f"/servers/{quote(server_id, safe='')}"

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
        if not url or not url.strip():
            raise DnsConfigError("PowerDNS: the API URL is missing (e.g. http://ns1.example.net:8081)")
        key = credential(credentials, "api_key", "PowerDNS")
        client = PowerDnsClient(
            api_base(url),
            name="powerdns",
            auth_headers={"X-API-Key": key},
            headers={"Content-Type": "application/json"},
            verify=setting_bool(settings, "verify_tls", True),
            connect_timeout=setting_float(settings, "connect_timeout", 5.0),
            read_timeout=setting_float(settings, "read_timeout", 30.0),
            transport=transport,
            recorder=recorder,
            secrets=[key],
            max_retries=setting_int(settings, "max_retries", 2),
        )
        server_id = str(settings.get("server_id") or "localhost").strip()
        return cls(
            client,
            server_id=server_id,
            notify_after_change=setting_bool(settings, "notify", True),
            zone_cache_seconds=setting_float(settings, "zone_cache_seconds", 60.0),
            default_ttl=setting_int(settings, "default_ttl", 3600),
            name=str(settings.get("name") or "powerdns"),
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    # --- requests -------------------------------------------------------------------------------

    async def _call(
        self, method: str, path: str, *, zone: str | None = None, **kwargs: Any
    ) -> UpstreamResponse:
        try:
            return await self.client.call(method, self._server_path + path, **kwargs)
        except UpstreamNotFound as exc:
            if zone is None:
                raise DnsConfigError(
                    f"{exc.message} - PowerDNS has no server called {self.server_id!r}; on a standard "
                    "installation the server id is 'localhost'",
                    provider=self.name,
                    status=exc.status,
                    url=exc.url,
                    method=exc.method,
                    client=exc.client,
                ) from None
            self._zones = None
            raise DnsZoneNotFound(
                f"PowerDNS: zone {zone} does not exist on the server ({exc.message})",
                provider=self.name,
                zone=zone,
                status=exc.status,
                url=exc.url,
                method=exc.method,
                client=exc.client,
            ) from None
        except UpstreamError as exc:
            hint = AUTH_CHECKLIST if exc.outcome == "auth" else rejection_hint(exc.message)
            raise translate(exc, provider=self.name, zone=zone, hint=hint) from None

    # --- zones ----------------------------------------------------------------------------------

    async def _list_zones(self) -> list[ZoneInfo]:
        response = await self._call("GET", "/zones")
        if not isinstance(response.data, list):
            raise DnsUnavailable("PowerDNS: the zone list is not a JSON list", provider=self.name)
        zones = [
            ZoneInfo(
                name=normalize_name(str(item["name"])),
                id=str(item.get("id") or zone_id(str(item["name"]))),
                kind=item.get("kind"),
                serial=item.get("serial"),
                extra={k: v for k, v in item.items() if k not in ("name", "id", "kind", "serial")},
            )
            for item in response.data
            if isinstance(item, dict) and item.get("name")
        ]
        return zones

    async def zone_details(self, zone: str) -> dict[str, Any]:
        """The zone object without its records (``soa_edit_api``, ``serial``, ``kind`` ...)."""
        info = await self.zone(zone)
        response = await self._call("GET", f"/zones/{info.id}", zone=info.name, params={"rrsets": "false"})
        return dict(response.data or {})

    async def serial(self, zone: str) -> int:
        return int((await self.zone_details(zone))["serial"])

    # --- records --------------------------------------------------------------------------------

    @staticmethod
    def _parse_rrset(item: Mapping[str, Any]) -> RRset:
        rtype = str(item["type"]).upper()
        contents = []
        for record in item.get("records") or ():
            if record.get("disabled"):
                continue  # a disabled record does not answer queries: not "already there"
            try:
                contents.append(normalize_content(rtype, str(record["content"])))
            except ValueError:
                contents.append(str(record["content"]))
        comments = item.get("comments") or []
        ours = [c for c in comments if c.get("account") == COMMENT_ACCOUNT] or comments
        comment = str(ours[0].get("content")) if ours else None
        return RRset(
            name=normalize_name(str(item["name"])),
            type=rtype,
            ttl=int(item.get("ttl") or 0),
            records=tuple(sorted(set(contents))),
            comment=comment,
        )

    async def _read(
        self, info: ZoneInfo, params: Mapping[str, str] | None = None
    ) -> dict[tuple[str, str], RRset]:
        response = await self._call("GET", f"/zones/{info.id}", zone=info.name, params=params)
        rrsets = (response.data or {}).get("rrsets") or []
        parsed = (self._parse_rrset(item) for item in rrsets if isinstance(item, dict))
        return {rrset.key: rrset for rrset in parsed}

    async def get_rrset(self, zone: str, name: str, rtype: str) -> RRset | None:
        info = await self.zone(zone)
        key = (normalize_name(name), rtype.upper())
        current = await self._read(info, {"rrset_name": key[0], "rrset_type": key[1]})
        return current.get(key)

    async def get_rrsets(
        self, zone: str, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], RRset | None]:
        wanted = [(normalize_name(n), t.upper()) for n, t in keys]
        if len(wanted) <= 3:
            return await super().get_rrsets(zone, wanted)
        current = await self._read(await self.zone(zone))
        return {key: current.get(key) for key in wanted}

    async def _current_for(self, info: ZoneInfo, changes: Sequence[Change]) -> dict[tuple[str, str], RRset]:
        # One filtered read for a single change (client edits); one full read for a batch, which costs
        # one request however many addresses the zone holds.
        if len(changes) == 1:
            name, rtype = changes[0].key
            return await self._read(info, {"rrset_name": name, "rrset_type": rtype})
        return await self._read(info)

    @staticmethod
    def rrset_payload(change: Change) -> dict[str, Any]:
        if change.action == "delete":
            return {"name": change.name, "type": change.type, "changetype": "DELETE", "records": []}
        payload: dict[str, Any] = {
            "name": change.name,
            "type": change.type,
            "ttl": change.ttl,
            "changetype": "REPLACE",
            "records": [{"content": content, "disabled": False} for content in change.records],
        }
        if change.comment is not None:
            # Always the full list with our account: a comment re-sent without "account" wipes it.
            payload["comments"] = [{"content": change.comment, "account": COMMENT_ACCOUNT}]
        return payload

    async def _patch(self, info: ZoneInfo, changes: Sequence[Change]) -> None:
        body = {"rrsets": [self.rrset_payload(change) for change in changes]}
        # REPLACE/DELETE describe a final state, so repeating the PATCH after a timeout is safe.
        await self._call(
            "PATCH", f"/zones/{info.id}", zone=info.name, json=body, idempotent=True, expect_json=False
        )

    async def apply(self, zone: str, changes: Sequence[Change]) -> ApplyResult:
        info = await self.zone(zone)
        self.check_changes_supported(info.name, changes)
        batch = dedupe_changes(list(changes))
        result = ApplyResult(zone=info.name)
        started = self.client.calls
        try:
            if not batch:
                return result
            current = await self._current_for(info, batch)
            needed = []
            for change in batch:
                if change.satisfied_by(current.get(change.key)):
                    result.unchanged.append(change)
                else:
                    needed.append(change)
            if not needed:
                return result
            try:
                await self._patch(info, needed)
                result.applied.extend(needed)
            except DnsRecordRejected as exc:
                # PowerDNS applies a PATCH all-or-nothing; one bad record must not block the others.
                if len(needed) == 1:
                    result.failed.append((needed[0], str(exc)))
                else:
                    result.messages.append(f"batch refused ({exc}); retrying record by record")
                    for change in needed:
                        try:
                            await self._patch(info, [change])
                            result.applied.append(change)
                        except DnsRecordRejected as single:
                            result.failed.append((change, str(single)))
            if result.applied and self.notify_after_change:
                try:
                    result.notified = await self.notify(info.name)
                except DnsError as exc:
                    result.notified = False
                    result.messages.append(f"NOTIFY failed (the change itself is saved): {exc}")
            return result
        finally:
            result.requests = self.client.calls - started

    async def notify(self, zone: str) -> bool:
        info = await self.zone(zone)
        response = await self._call(
            "PUT", f"/zones/{info.id}/notify", zone=info.name, expect_json=True, idempotent=True
        )
        return response.status == 200

    # --- test connection ------------------------------------------------------------------------

    async def test_connection(self) -> ConnectionReport:
        try:
            server = await self._call("GET", "")
            zones = await self.zones(refresh=True)
        except DnsAuthFailed as exc:
            return ConnectionReport(False, f"PowerDNS refused the API key: {exc}")
        except DnsConfigError as exc:
            return ConnectionReport(False, str(exc))
        except DnsError as exc:
            return ConnectionReport(
                False,
                f"cannot talk to the PowerDNS API: {exc} - check the URL (webserver-address/-port) and "
                "that the server runs with api=yes and webserver=yes",
            )
        data = server.data if isinstance(server.data, dict) else {}
        version = data.get("version")
        report = ConnectionReport(
            True,
            f"PowerDNS {version or '(unknown version)'} at server id {self.server_id!r}, "
            f"{len(zones)} zone(s)",
            version=version,
            zones=[z.name for z in zones],
        )
        report.warnings.extend(zone_name_problems(report.zones))
        reverse = [z for z in zones if z.is_reverse]
        for info in reverse[:100]:
            if (info.kind or "").lower() in ("slave", "secondary"):
                report.warnings.append(
                    f"{info.name} is a secondary zone on this server; make changes on its primary"
                )
                continue
            try:
                details = await self.zone_details(info.name)
            except DnsError as exc:
                report.warnings.append(f"{info.name}: could not read zone settings: {exc}")
                continue
            if not details.get("soa_edit_api"):
                report.warnings.append(
                    f"{info.name} has no SOA-EDIT-API, so its serial will not change when PTRs change and "
                    f"secondaries will not pick them up; fix: pdnsutil set-meta {info.name} SOA-EDIT-API "
                    "INCREASE"
                )
        if len(reverse) > 100:
            report.warnings.append(f"only the first 100 of {len(reverse)} reverse zones were checked")
        return report
