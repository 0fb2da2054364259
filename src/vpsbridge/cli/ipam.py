"""``vpsbridge ip ...``: pool usage with reverse zone hints, and operator address assignment.

Pools themselves are managed with ``vpsbridge pool add|list|show|remove``; these commands work on
the addresses inside them. Allocation for deploys is automatic and transactional; ``assign`` is for
the exceptions (a router address to keep out of circulation, an address moved by hand).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from vpsbridge.cli._runtime import print_json, run_with_context
from vpsbridge.services import ipam
from vpsbridge.services.errors import ServiceError

T = TypeVar("T")
ip_app = typer.Typer(help="Addresses in IP pools: usage, assignment and release.", no_args_is_help=True)
out = Console()
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _run(ctx: typer.Context, fn: Callable[[Any], Awaitable[T]]) -> T:
    try:
        return run_with_context(ctx, fn)
    except ServiceError as exc:
        typer.echo(f"vpsbridge: {exc.message}", err=True)
        sys.exit(1)


@ip_app.command("usage")
def usage(
    ctx: typer.Context,
    pool: Annotated[str | None, typer.Argument(help="Pool id or name (default: every pool).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Size, allocated, reserved and free per pool, and the reverse zone to create for it."""
    rows = _run(ctx, lambda c: ipam.pool_usage(c, pool))
    if as_json:
        print_json([r.as_dict() for r in rows])
        return
    table = Table(title="IP pools", title_justify="left")
    for column in (
        "pool",
        "network",
        "scope",
        "size",
        "allocated",
        "reserved",
        "free",
        "servers",
        "reverse zone",
    ):
        table.add_column(column)
    for r in rows:
        size = f"{r.size} {r.unit}{'es' if r.unit == 'prefix' else 's'}"
        table.add_row(
            r.name + ("" if r.enabled else " (disabled)"),
            r.network,
            r.scope or "-",
            size,
            str(r.allocated),
            str(r.reserved),
            str(r.free),
            str(r.servers),
        )
    out.print(table)
    for r in rows:
        # Printed whole (not in a column) because unaligned prefixes get a sentence, not a name.
        typer.echo(f"{r.name}: reverse zone {r.reverse_zone}")


@ip_app.command("assign")
def assign(
    ctx: typer.Context,
    pool: Annotated[str, typer.Argument(help="Pool id or name.")],
    address: Annotated[str, typer.Argument(help="The address (or IPv6 prefix) to take.")],
    server: Annotated[int | None, typer.Option("--server", help="Give it to this server id.")] = None,
    note: Annotated[str | None, typer.Option("--note", help="Why (shown in listings).")] = None,
) -> None:
    """Take one address: for a server, or reserved so no deploy gets it."""
    got = _run(ctx, lambda c: ipam.assign(c, pool, address, server_id=server, note=note))
    who = f"server {server}" if server is not None else "a reservation"
    typer.echo(f"{got.subnet or got.address} in pool {got.pool_name} now belongs to {who}")


@ip_app.command("release")
def release(
    ctx: typer.Context,
    pool: Annotated[str, typer.Argument(help="Pool id or name.")],
    address: Annotated[str, typer.Argument(help="The address to free.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Free one address. A server still using it would clash with the next deploy - check first."""
    if not yes and not typer.confirm(f"Free {address} in pool {pool}?"):
        raise typer.Abort()
    _run(ctx, lambda c: ipam.unreserve(c, pool, address))
    typer.echo(f"{address} freed")


@ip_app.command("server")
def server_addresses(
    ctx: typer.Context,
    server_id: Annotated[int, typer.Argument(help="Server id.")],
    as_json: JsonOpt = False,
) -> None:
    """The addresses a server holds, with their network configuration."""

    async def read(c: Any) -> list[ipam.Allocation]:
        async with c.db.session() as session:
            return await ipam.addresses_of(session, server_id)

    rows = _run(ctx, read)
    if as_json:
        print_json([r.as_dict() for r in rows])
        return
    table = Table(title=f"Server {server_id}", title_justify="left")
    for column in ("address", "pool", "gateway", "bridge", "vlan"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r.host_cidr if r.subnet else r.cidr,
            r.pool_name,
            r.gateway or "-",
            r.bridge or "-",
            str(r.vlan or "-"),
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(ip_app, name="ip")
