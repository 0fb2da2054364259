"""HestiaCP provider: DNS records through the panel's command API (``POST /api/``).

HestiaCP has no rrsets and no batch: it runs its ``v-*`` shell commands one per request, addresses
records by numeric id, and every change rewrites the zone file. We therefore list a domain once, work
out per rrset which records to change in place, delete or add, and ask the panel to reload its DNS
server only on the last command of a batch.

Its domain validator rejects ``/`` and ``_``, so of the RFC 2317 spellings only the dash one
(``0-26.2.0.192.in-addr.arpa``) can exist there. Auth is an access key and secret key (HestiaCP 1.6+),
sent as ``hash=ACCESS:SECRET``, and the calling address must be in the panel's API allow-list.
"""

from __future__ import annotations

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
from vpsbridge.http import Recorder, UpstreamClient, UpstreamError, UpstreamResponse

E_NOTEXIST = "3"
AUTH_HINT = (
    "check the access key and secret key, that the key's user may use the API, and that this host's "
    "address is in the panel's API allow-list (Server settings > Security > API)"
)


class HestiaClient(UpstreamClient):
    """Form posts to ``/api/``; errors come as ``Error: ...`` text with a ``Hestia-Exit-Code`` header."""

    calls = 0
    #: ``ACCESS_KEY:SECRET_KEY``, sent as the ``hash`` field of every command.
    key_pair = ""

    def is_missing(self, response: httpx2.Response) -> bool:
        return response.headers.get("hestia-exit-code") == E_NOTEXIST or response.status_code == 404

    def error_message(self, response: httpx2.Response) -> str | None:
        text = response.text.strip()
        code = response.headers.get("hestia-exit-code")
        if text and "<html" not in text[:200].lower():
            return f"{text[:300]}{f' (exit code {code})' if code else ''}"
        return f"exit code {code}" if code else None

    async def command(self, cmd: str, *args: str, read: bool = False) -> UpstreamResponse:
        self.calls += 1
        fields = {"hash": self.key_pair, "cmd": cmd, "returncode": "no"}
        fields.update({f"arg{i}": value for i, value in enumerate(args, start=1)})
        # Listing is safe to repeat after a timeout; adding a record is not.
        return await self._request("POST", "/api/", data=fields, idempotent=read, expect_json=read)


@dataclass(frozen=True, slots=True)
class _Record:
    id: str
    name: str
    type: str
    content: str
    ttl: int


class HestiaProvider(DnsProvider):
    TYPE = "hestiacp"
    LABEL = "HestiaCP"
    SUPPORTS = frozenset({"A", "AAAA", "PTR", "CNAME", "TXT", "MX", "NS", "SRV", "CAA"})
    SUPPORTS_CLASSLESS = frozenset({"dash"})
    SUPPORTS_BATCH = False
    SUPPORTS_NOTIFY = False
    CREDENTIAL_FIELDS = ("access_key", "secret_key")

    def __init__(
        self,
        client: HestiaClient,
        *,
        user: str,
        zone_cache_seconds: float = 60.0,
        default_ttl: int = 3600,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name, default_ttl=default_ttl, zone_cache_seconds=zone_cache_seconds)
        self.client = client
        self.user = user

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
            raise DnsConfigError("HestiaCP: the panel URL is missing (e.g. https://panel.example.net:8083)")
        access = str(credentials.get("access_key") or "").strip()
        secret = str(credentials.get("secret_key") or "").strip()
        if not access or not secret:
            raise DnsConfigError("HestiaCP: both access_key and secret_key are required")
        base = url.strip().rstrip("/").removesuffix("/api")
        client = HestiaClient(
            base,
            name="hestiacp",
            headers={"Accept": "application/json, text/plain"},
            verify=setting_bool(settings, "verify_tls", True),
            connect_timeout=setting_float(settings, "connect_timeout", 5.0),
            read_timeout=setting_float(settings, "read_timeout", 60.0),
            transport=transport,
            recorder=recorder,
            secrets=[secret, f"{access}:{secret}"],
            max_retries=setting_int(settings, "max_retries", 2),
        )
        client.add_secret(access)
        client.key_pair = f"{access}:{secret}"
        return cls(
            client,
            user=str(settings.get("user") or "admin").strip(),
            zone_cache_seconds=setting_float(settings, "zone_cache_seconds", 60.0),
            default_ttl=setting_int(settings, "default_ttl", 3600),
            name=str(settings.get("name") or "hestiacp"),
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _command(
        self, cmd: str, *args: str, zone: str | None = None, read: bool = False
    ) -> UpstreamResponse:
        try:
            return await self.client.command(cmd, *args, read=read)
        except UpstreamError as exc:
            hint = AUTH_HINT if exc.outcome == "auth" else ""
            if exc.outcome == "missing" and zone is not None:
                self._zones = None
            raise translate(exc, provider=self.name, zone=zone, hint=hint) from None

    # --- zones ----------------------------------------------------------------------------------

    async def _list_zones(self) -> list[ZoneInfo]:
        response = await self._command("v-list-dns-domains", self.user, "json", read=True)
        data = response.data if isinstance(response.data, dict) else {}
        if response.data is not None and not isinstance(response.data, dict | list):
            raise DnsUnavailable("HestiaCP: the domain list is not JSON", provider=self.name)
        zones = []
        for domain, details in data.items():
            serial = details.get("SERIAL") if isinstance(details, dict) else None
            zones.append(
                ZoneInfo(
                    name=normalize_name(domain),
                    id=domain.rstrip("."),
                    kind="suspended"
                    if isinstance(details, dict) and details.get("SUSPENDED") == "yes"
                    else None,
                    serial=int(serial) if serial and str(serial).isdigit() else None,
                    extra=details if isinstance(details, dict) else {},
                )
            )
        return zones

    # --- records --------------------------------------------------------------------------------

    @staticmethod
    def _owner(record: str, zone: ZoneInfo) -> str:
        if record in ("@", ""):
            return zone.name
        if record.endswith("."):
            return normalize_name(record)
        return normalize_name(f"{record}.{zone.name}")

    @staticmethod
    def _relative(owner: str, zone: ZoneInfo) -> str:
        if owner == zone.name:
            return "@"
        return owner[: -len(zone.name) - 1]

    async def _records(self, info: ZoneInfo) -> list[_Record]:
        response = await self._command(
            "v-list-dns-records", self.user, info.id, "json", zone=info.name, read=True
        )
        data = response.data if isinstance(response.data, dict) else {}
        records = []
        for record_id, item in data.items():
            if not isinstance(item, dict) or item.get("SUSPENDED") == "yes":
                continue
            rtype = str(item.get("TYPE", "")).upper()
            value = str(item.get("VALUE", ""))
            try:
                content = normalize_content(rtype, value)
            except ValueError:
                content = value
            ttl = str(item.get("TTL") or "")
            records.append(
                _Record(
                    id=str(item.get("ID") or record_id),
                    name=self._owner(str(item.get("RECORD", "")), info),
                    type=rtype,
                    content=content,
                    ttl=int(ttl) if ttl.isdigit() else self.default_ttl,
                )
            )
        return records

    @staticmethod
    def _as_rrset(records: list[_Record]) -> RRset:
        first = records[0]
        return RRset(first.name, first.type, first.ttl, tuple(sorted({r.content for r in records})))

    async def get_rrset(self, zone: str, name: str, rtype: str) -> RRset | None:
        info = await self.zone(zone)
        key = (normalize_name(name), rtype.upper())
        matching = [r for r in await self._records(info) if (r.name, r.type) == key]
        return self._as_rrset(matching) if matching else None

    async def get_rrsets(
        self, zone: str, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], RRset | None]:
        # HestiaCP can only list a whole domain, so one listing serves any number of keys.
        wanted = [(normalize_name(n), t.upper()) for n, t in keys]
        grouped: dict[tuple[str, str], list[_Record]] = {}
        info = await self.zone(zone)
        for record in await self._records(info):
            grouped.setdefault((record.name, record.type), []).append(record)
        return {key: self._as_rrset(grouped[key]) if key in grouped else None for key in wanted}

    def _plan(self, info: ZoneInfo, change: Change, current: list[_Record]) -> list[tuple[str, ...]]:
        """HestiaCP commands (without the trailing RESTART/TTL handling) for one rrset."""
        if change.action == "delete":
            return [("v-delete-dns-record", self.user, info.id, r.id) for r in current]
        relative = self._relative(change.name, info)
        wanted = list(change.records)
        extras = []
        ops: list[tuple[str, ...]] = []
        for record in current:
            if record.content in wanted:
                wanted.remove(record.content)
                if record.ttl != change.ttl:
                    ops.append(
                        (
                            "v-change-dns-record",
                            self.user,
                            info.id,
                            record.id,
                            relative,
                            change.type,
                            record.content,
                            "",
                        )
                    )
            else:
                extras.append(record)
        for record, content in zip(extras, wanted, strict=False):
            ops.append(
                ("v-change-dns-record", self.user, info.id, record.id, relative, change.type, content, "")
            )
        ops.extend(("v-delete-dns-record", self.user, info.id, r.id) for r in extras[len(wanted) :])
        ops.extend(
            ("v-add-dns-record", self.user, info.id, relative, change.type, content, "", "")
            for content in wanted[len(extras) :]
        )
        return ops

    @staticmethod
    def _with_restart(op: tuple[str, ...], restart: bool, ttl: int) -> tuple[str, ...]:
        flag = "yes" if restart else "no"
        if op[0] == "v-delete-dns-record":
            return (*op, flag)
        # v-change: USER DOMAIN ID RECORD TYPE VALUE PRIORITY RESTART TTL
        # v-add:    USER DOMAIN RECORD TYPE VALUE PRIORITY ID RESTART TTL (ID empty = next free)
        return (*op, flag, str(ttl))

    async def apply(self, zone: str, changes: Sequence[Change]) -> ApplyResult:
        info = await self.zone(zone)
        self.check_changes_supported(info.name, changes)
        batch = dedupe_changes(list(changes))
        result = ApplyResult(zone=info.name)
        started = self.client.calls
        try:
            if not batch:
                return result
            grouped: dict[tuple[str, str], list[_Record]] = {}
            for record in await self._records(info):
                grouped.setdefault((record.name, record.type), []).append(record)
            planned = []
            for change in batch:
                current = grouped.get(change.key, [])
                if change.satisfied_by(self._as_rrset(current) if current else None):
                    result.unchanged.append(change)
                else:
                    planned.append((change, self._plan(info, change, current)))
            total = sum(len(ops) for _, ops in planned)
            sent = 0
            for change, ops in planned:
                try:
                    for op in ops:
                        sent += 1
                        # Reload the DNS server once, with the last command of the batch.
                        await self._command(
                            *self._with_restart(op, sent == total, change.ttl), zone=info.name
                        )
                    result.applied.append(change)
                except DnsRecordRejected as exc:
                    result.failed.append((change, str(exc)))
            if result.failed and result.applied and sent == total:
                result.messages.append(
                    "the last command failed; HestiaCP serves the other changes after its next DNS reload"
                )
            return result
        finally:
            result.requests = self.client.calls - started

    # --- test connection ------------------------------------------------------------------------

    async def test_connection(self) -> ConnectionReport:
        try:
            zones = await self.zones(refresh=True)
        except DnsAuthFailed as exc:
            return ConnectionReport(False, f"HestiaCP refused the access key: {exc}")
        except DnsError as exc:
            return ConnectionReport(
                False, f"cannot use the HestiaCP API as user {self.user!r}: {exc} - {AUTH_HINT}"
            )
        report = ConnectionReport(
            True,
            f"HestiaCP API, user {self.user!r}, {len(zones)} DNS domain(s)",
            zones=[z.name for z in zones],
        )
        report.warnings.extend(zone_name_problems(report.zones))
        report.warnings.extend(f"{z.name} is suspended in HestiaCP" for z in zones if z.kind == "suspended")
        return report
