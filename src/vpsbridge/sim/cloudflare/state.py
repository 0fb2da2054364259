"""In-memory state of the Cloudflare simulator: accounts' zones and their DNS records.

It keeps Cloudflare's observable rules: names lower case without the trailing dot, record ids of 32
hex digits, no RFC 2317 zone names, a batch that validates everything before changing anything, and
a per-plan limit on batch size.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

SUPPORTED_TYPES = frozenset({"A", "AAAA", "CNAME", "PTR", "TXT", "MX", "NS", "CAA", "SRV"})
PROXIABLE = frozenset({"A", "AAAA", "CNAME"})
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


class CloudflareApiError(Exception):
    """An error the API reports in its envelope: HTTP status, Cloudflare code, message, error chain."""

    def __init__(
        self, status: int, code: int, message: str, chain: list[tuple[int, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.chain = chain or []

    def as_error(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.chain:
            error["error_chain"] = [{"code": c, "message": m} for c, m in self.chain]
        return error


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


def _new_id() -> str:
    return secrets.token_hex(16)


def bare(name: str) -> str:
    return name.strip().lower().rstrip(".")


def valid_hostname(name: str) -> bool:
    text = bare(name)
    return bool(text) and len(text) <= 253 and all(_LABEL.match(label) for label in text.split("."))


@dataclass
class Zone:
    id: str
    name: str
    account_id: str
    status: str = "active"
    created_on: str = field(default_factory=_now)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "paused": False,
            "type": "full",
            "development_mode": 0,
            "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
            "account": {"id": self.account_id, "name": "Simulated account"},
            "created_on": self.created_on,
            "modified_on": self.created_on,
        }


@dataclass
class CloudflareState:
    """The whole simulated account; tests reach in to seed zones and inject rate limiting."""

    tokens: set[str] = field(default_factory=lambda: {"sim-cloudflare-token-0123456789"})
    account_id: str = field(default_factory=_new_id)
    batch_limit: int = 200
    zones: dict[str, Zone] = field(default_factory=dict)
    #: Remaining requests to refuse with 429 (each carries ``retry_after`` seconds).
    throttle_next: int = 0
    retry_after: int = 1
    requests: list[tuple[str, str]] = field(default_factory=list)

    # --- zones ---------------------------------------------------------------------------------

    def add_zone(self, name: str, *, status: str = "active") -> Zone:
        text = bare(name)
        if "/" in text or not valid_hostname(text) or "." not in text:
            raise CloudflareApiError(400, 1099, f"'{text}' is not a registered domain or a valid zone name")
        if any(z.name == text for z in self.zones.values()):
            raise CloudflareApiError(
                400, 1061, f"{text} already exists", [(1061, "A zone with this name already exists")]
            )
        zone = Zone(id=_new_id(), name=text, account_id=self.account_id, status=status)
        self.zones[zone.id] = zone
        return zone

    def zone(self, zone_id: str) -> Zone:
        zone = self.zones.get(zone_id)
        if zone is None:
            raise CloudflareApiError(
                404,
                7003,
                "Could not route to /zones/" + zone_id + ", perhaps your object identifier is invalid?",
            )
        return zone

    # --- records -------------------------------------------------------------------------------

    def _validated(
        self, zone: Zone, body: dict[str, Any], *, existing_id: str | None = None
    ) -> dict[str, Any]:
        rtype = str(body.get("type") or "").upper()
        name = bare(str(body.get("name") or ""))
        content = str(body.get("content") or "").strip()
        if rtype not in SUPPORTED_TYPES:
            raise CloudflareApiError(
                400, 1004, "DNS Validation Error", [(9005, f"Invalid record type {rtype!r}")]
            )
        if name == "@":
            name = zone.name
        elif name and not name.endswith(zone.name):
            name = f"{name}.{zone.name}"
        if not valid_hostname(name) or not (name == zone.name or name.endswith("." + zone.name)):
            raise CloudflareApiError(400, 1004, "DNS Validation Error", [(9000, "DNS name is invalid.")])
        if rtype == "A":
            try:
                content = str(ipaddress.IPv4Address(content))
            except ValueError:
                raise CloudflareApiError(
                    400,
                    1004,
                    "DNS Validation Error",
                    [(9005, "Content for A record must be a valid IPv4 address.")],
                ) from None
        elif rtype == "AAAA":
            try:
                content = str(ipaddress.IPv6Address(content))
            except ValueError:
                raise CloudflareApiError(
                    400,
                    1004,
                    "DNS Validation Error",
                    [(9005, "Content for AAAA record must be a valid IPv6 address.")],
                ) from None
        elif rtype in ("PTR", "CNAME", "NS"):
            content = bare(content)
            if not valid_hostname(content):
                raise CloudflareApiError(
                    400, 1004, "DNS Validation Error", [(9007, f"Content for {rtype} record is invalid.")]
                )
        ttl = body.get("ttl", 1)
        if not isinstance(ttl, int) or (ttl != 1 and not 30 <= ttl <= 86400):
            raise CloudflareApiError(
                400,
                1004,
                "DNS Validation Error",
                [(9021, "Invalid TTL. Must be between 60 and 86400 or 1 for automatic.")],
            )
        proxied = bool(body.get("proxied", False))
        if proxied and rtype not in PROXIABLE:
            raise CloudflareApiError(400, 9004, f"This record type cannot be proxied: {rtype}")
        for other in zone.records.values():
            if other["id"] == existing_id or other["name"] != name:
                continue
            if other["type"] == rtype and other["content"] == content:
                raise CloudflareApiError(400, 81058, "An identical record already exists.")
            if "CNAME" in (rtype, other["type"]) and rtype != other["type"]:
                raise CloudflareApiError(
                    400, 81053, "An A, AAAA, or CNAME record with that host already exists."
                )
        return {
            "type": rtype,
            "name": name,
            "content": content,
            "ttl": ttl,
            "proxied": proxied,
            "comment": body.get("comment"),
        }

    def _store(self, zone: Zone, fields: dict[str, Any], record_id: str | None = None) -> dict[str, Any]:
        now = _now()
        record = zone.records.get(record_id or "") or {"id": _new_id(), "created_on": now}
        record.update(
            {
                **fields,
                "zone_id": zone.id,
                "zone_name": zone.name,
                "proxiable": fields["type"] in PROXIABLE,
                "locked": False,
                "meta": {},
                "tags": [],
                "modified_on": now,
            }
        )
        zone.records[record["id"]] = record
        return dict(record)

    def record(self, zone: Zone, record_id: str) -> dict[str, Any]:
        record = zone.records.get(record_id)
        if record is None:
            raise CloudflareApiError(404, 81044, "Record does not exist.")
        return record

    def create_record(self, zone: Zone, body: dict[str, Any]) -> dict[str, Any]:
        return self._store(zone, self._validated(zone, body))

    def put_record(self, zone: Zone, record_id: str, body: dict[str, Any]) -> dict[str, Any]:
        self.record(zone, record_id)
        return self._store(zone, self._validated(zone, body, existing_id=record_id), record_id)

    def patch_record(self, zone: Zone, record_id: str, body: dict[str, Any]) -> dict[str, Any]:
        current = self.record(zone, record_id)
        merged = {k: current[k] for k in ("type", "name", "content", "ttl", "proxied", "comment")}
        merged.update({k: v for k, v in body.items() if k != "id"})
        return self._store(zone, self._validated(zone, merged, existing_id=record_id), record_id)

    def delete_record(self, zone: Zone, record_id: str) -> dict[str, Any]:
        self.record(zone, record_id)
        return {"id": zone.records.pop(record_id)["id"]}

    def list_records(self, zone: Zone, filters: dict[str, str]) -> list[dict[str, Any]]:
        name = filters.get("name.exact") or filters.get("name")
        rtype = filters.get("type")
        content = filters.get("content.exact") or filters.get("content")
        found = []
        for record in zone.records.values():
            if name and record["name"] != bare(name):
                continue
            if rtype and record["type"] != rtype.upper():
                continue
            if content and record["content"] != content:
                continue
            found.append(dict(record))
        return sorted(found, key=lambda r: (r["type"], r["name"], r["content"]))

    def batch(self, zone: Zone, body: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        """Deletes, patches, puts, posts - in that order, all or nothing."""
        groups = {key: list(body.get(key) or []) for key in ("deletes", "patches", "puts", "posts")}
        total = sum(len(v) for v in groups.values())
        if total > self.batch_limit:
            raise CloudflareApiError(
                400, 81080, f"Batch of {total} records exceeds the limit of {self.batch_limit} for this plan"
            )
        snapshot = {rid: dict(r) for rid, r in zone.records.items()}
        result: dict[str, list[dict[str, Any]]] = {key: [] for key in groups}
        try:
            for item in groups["deletes"]:
                record = self.record(zone, str(item.get("id")))
                zone.records.pop(record["id"])
                result["deletes"].append(record)
            for item in groups["patches"]:
                result["patches"].append(self.patch_record(zone, str(item.get("id")), item))
            for item in groups["puts"]:
                result["puts"].append(self.put_record(zone, str(item.get("id")), item))
            for item in groups["posts"]:
                result["posts"].append(self.create_record(zone, item))
        except CloudflareApiError:
            zone.records = snapshot
            raise
        return result
