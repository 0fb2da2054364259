"""In-memory state of the HestiaCP simulator: users' DNS domains and their numbered records.

It mirrors what the panel's ``v-*`` DNS commands check and print, with their exit codes, because the
provider's error handling is built on those: E_ARGS 1, E_INVALID 2, E_NOTEXIST 3, E_EXISTS 4,
E_PASSWORD 9, E_FORBIDEN 10 (sic, HestiaCP's spelling).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

E_ARGS, E_INVALID, E_NOTEXIST, E_EXISTS, E_PASSWORD, E_FORBIDEN = 1, 2, 3, 4, 9, 10
DNS_TYPES = (
    "A",
    "AAAA",
    "CAA",
    "CNAME",
    "DNSKEY",
    "DS",
    "IPSECKEY",
    "KEY",
    "MX",
    "NS",
    "PTR",
    "SPF",
    "SRV",
    "TLSA",
    "TXT",
)
USAGE = {
    "v-list-dns-domains": "USER [FORMAT]",
    "v-list-dns-records": "USER DOMAIN [FORMAT]",
    "v-add-dns-domain": "USER DOMAIN IP [NS1] [NS2] [NS3] [NS4] [NS5] [NS6] [NS7] [NS8] [RESTART]",
    "v-add-dns-record": "USER DOMAIN RECORD TYPE VALUE [PRIORITY] [ID] [RESTART] [TTL]",
    "v-change-dns-record": "USER DOMAIN ID RECORD TYPE VALUE [PRIORITY] [RESTART] [TTL]",
    "v-delete-dns-record": "USER DOMAIN ID [RESTART]",
}
#: HestiaCP's is_domain_format_valid: no "/" and no "_" (so only dash-style RFC 2317 names pass).
_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$")
_RECORD = re.compile(r"^(@|\*|[a-z0-9_*]([a-z0-9_.*-]{0,251}[a-z0-9_*])?)$")


class HestiaCommandError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _stamp() -> tuple[str, str]:
    now = dt.datetime.now(dt.UTC)
    return now.strftime("%H:%M:%S"), now.strftime("%Y-%m-%d")


@dataclass
class DnsDomain:
    name: str
    ip: str
    serial: int = field(default_factory=lambda: int(dt.datetime.now(dt.UTC).strftime("%Y%m%d01")))
    records: dict[int, dict[str, str]] = field(default_factory=dict)
    suspended: bool = False
    reloads: int = 0


@dataclass
class HestiaState:
    """Users with access keys, their DNS domains, and a log of commands (for tests)."""

    keys: dict[str, tuple[str, str]] = field(
        default_factory=lambda: {
            "SIMACCESSKEY000000001": ("sim-secret-key-0123456789abcdef01234567", "admin")
        }
    )
    domains: dict[str, dict[str, DnsDomain]] = field(default_factory=dict)
    commands: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    allowed_ips: set[str] | None = None

    def authenticate(self, access: str, secret: str) -> str:
        entry = self.keys.get(access)
        if entry is None or entry[0] != secret:
            raise HestiaCommandError(E_PASSWORD, "Error: authentication failed")
        return entry[1]

    # --- helpers -------------------------------------------------------------------------------

    def _domain(self, user: str, name: str) -> DnsDomain:
        domain = self.domains.get(user, {}).get(name.lower().rstrip("."))
        if domain is None:
            raise HestiaCommandError(E_NOTEXIST, f"Error: dns domain {name} doesn't exist")
        return domain

    @staticmethod
    def _need(cmd: str, args: list[str], count: int) -> None:
        if len([a for a in args[:count] if a != ""]) < count:
            raise HestiaCommandError(E_ARGS, f"Error: not enought arguments\nUsage: {cmd} {USAGE[cmd]}")

    @staticmethod
    def _check_value(rtype: str, value: str) -> str:
        if rtype == "A":
            try:
                return str(ipaddress.IPv4Address(value))
            except ValueError:
                raise HestiaCommandError(E_INVALID, f"Error: invalid ip format :: {value}") from None
        if rtype == "AAAA":
            try:
                return str(ipaddress.IPv6Address(value))
            except ValueError:
                raise HestiaCommandError(E_INVALID, f"Error: invalid ipv6 format :: {value}") from None
        if rtype in ("NS", "CNAME", "MX", "PTR", "SRV"):
            # is_dns_fqnd: at least two dots once the trailing one is added
            if value.count(".") < (2 if value.endswith(".") else 1) or " " in value:
                raise HestiaCommandError(E_INVALID, f"Error: invalid {rtype.lower()} format :: {value}")
            return value if value.endswith(".") else value + "."
        return value

    def _record(self, domain: DnsDomain, record: str, rtype: str, value: str, ttl: str) -> dict[str, str]:
        record = record.lower()
        rtype = rtype.upper()
        if not _RECORD.match(record):
            raise HestiaCommandError(E_INVALID, f"Error: invalid record format :: {record}")
        if rtype not in DNS_TYPES:
            raise HestiaCommandError(E_INVALID, f"Error: invalid type format :: {rtype}")
        if ttl and not ttl.isdigit():
            raise HestiaCommandError(E_INVALID, f"Error: invalid ttl format :: {ttl}")
        time_, date = _stamp()
        return {
            "RECORD": record,
            "TYPE": rtype,
            "PRIORITY": "",
            "VALUE": self._check_value(rtype, value),
            "SUSPENDED": "no",
            "TIME": time_,
            "DATE": date,
            "TTL": ttl or "14400",
        }

    @staticmethod
    def _changed(domain: DnsDomain, restart: str) -> None:
        domain.serial += 1
        if restart != "no":
            domain.reloads += 1

    # --- commands ------------------------------------------------------------------------------

    def run(self, user: str, cmd: str, args: list[str]) -> Any:
        """Run ``cmd`` as ``user``; returns JSON-able output (or ``None``) or raises HestiaCommandError."""
        self.commands.append((cmd, tuple(args)))
        if cmd not in USAGE:
            raise HestiaCommandError(E_ARGS, f"Error: command {cmd} is not allowed")
        if args and args[0] != user and user != "admin":
            raise HestiaCommandError(E_FORBIDEN, "Error: user does not match the access key")
        return getattr(self, "cmd_" + cmd.removeprefix("v-").replace("-", "_"))(cmd, args)

    def cmd_list_dns_domains(self, cmd: str, args: list[str]) -> Any:
        self._need(cmd, args, 1)
        return {
            name: {
                "IP": d.ip,
                "TPL": "default",
                "TTL": "14400",
                "EXP": "2030-01-01",
                "SOA": "ns1.example.net",
                "SERIAL": str(d.serial),
                "SRC": "",
                "RECORDS": str(len(d.records)),
                "DNSSEC": "no",
                "KEY": "",
                "SLAVE": "no",
                "MASTER": "",
                "SUSPENDED": "yes" if d.suspended else "no",
                "TIME": "00:00:00",
                "DATE": "2026-01-01",
            }
            for name, d in sorted(self.domains.get(args[0], {}).items())
        }

    def cmd_list_dns_records(self, cmd: str, args: list[str]) -> Any:
        self._need(cmd, args, 2)
        domain = self._domain(args[0], args[1])
        return {str(rid): {**rec, "ID": str(rid)} for rid, rec in sorted(domain.records.items())}

    def cmd_add_dns_domain(self, cmd: str, args: list[str]) -> Any:
        self._need(cmd, args, 3)
        user, name = args[0], args[1].lower().rstrip(".")
        if not _DOMAIN.match(name):
            raise HestiaCommandError(E_INVALID, f"Error: invalid domain format :: {name}")
        if name in self.domains.get(user, {}):
            raise HestiaCommandError(E_EXISTS, f"Error: dns domain {name} exists")
        domain = DnsDomain(name=name, ip=args[2])
        self.domains.setdefault(user, {})[name] = domain
        # The default template fills a new domain with records (useless in a reverse zone, but real).
        for record, rtype, value in (("@", "NS", "ns1.example.net."), ("@", "A", args[2])):
            domain.records[len(domain.records) + 1] = self._record(domain, record, rtype, value, "")
        return None

    def cmd_add_dns_record(self, cmd: str, args: list[str]) -> Any:
        self._need(cmd, args, 5)
        padded = [*args, "", "", "", ""]
        user, name, record, rtype, value, _priority, rid, restart, ttl = padded[:9]
        domain = self._domain(user, name)
        if rid:
            if not rid.isdigit():
                raise HestiaCommandError(E_INVALID, f"Error: invalid id format :: {rid}")
            if int(rid) in domain.records:
                raise HestiaCommandError(E_EXISTS, f"Error: dns record with id {rid} exists")
            new_id = int(rid)
        else:
            new_id = max(domain.records, default=0) + 1
        domain.records[new_id] = self._record(domain, record, rtype, value, ttl)
        self._changed(domain, restart)
        return None

    def cmd_change_dns_record(self, cmd: str, args: list[str]) -> Any:
        self._need(cmd, args, 6)
        padded = [*args, "", "", ""]
        user, name, rid, record, rtype, value, _priority, restart, ttl = padded[:9]
        domain = self._domain(user, name)
        if not rid.isdigit() or int(rid) not in domain.records:
            raise HestiaCommandError(E_NOTEXIST, f"Error: dns record with id {rid} doesn't exist")
        domain.records[int(rid)] = self._record(
            domain, record, rtype, value, ttl or domain.records[int(rid)]["TTL"]
        )
        self._changed(domain, restart)
        return None

    def cmd_delete_dns_record(self, cmd: str, args: list[str]) -> Any:
        self._need(cmd, args, 3)
        user, name, rid = args[:3]
        restart = args[3] if len(args) > 3 else ""
        domain = self._domain(user, name)
        if not rid.isdigit() or int(rid) not in domain.records:
            raise HestiaCommandError(E_NOTEXIST, f"Error: dns record with id {rid} doesn't exist")
        del domain.records[int(rid)]
        self._changed(domain, restart)
        return None
