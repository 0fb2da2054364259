"""DNS operations on the command line: ``vpsbridge dns test|zones|sync|ptr-status|reconcile``.

They join the ``dns`` group the catalog commands create (``dns add|list|remove``), so operators find
everything DNS in one place. ``sync`` queues the same "Set DNS records" job provisioning queues
(``--now`` runs it in this process and prints its log as it goes); ``reconcile`` runs the additive
reconcile at once, ``--force`` resetting custom PTRs to the hostname.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from vpsbridge.cli._runtime import console, err_console, print_json, run_with_context
from vpsbridge.cli.catalog import dns_app
from vpsbridge.services.audit import Actor
from vpsbridge.services.errors import ServiceError

T = TypeVar("T")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ServerArg = Annotated[int, typer.Argument(help="Server id.")]


def _run(typer_ctx: typer.Context, fn: Callable[[Any], Awaitable[T]]) -> T:
    try:
        return run_with_context(typer_ctx, fn)
    except ServiceError as exc:
        err_console.print(f"[red]error:[/red] {exc}", markup=True, soft_wrap=True)
        raise typer.Exit(1) from None


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


@dns_app.command("test")
def dns_test(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Provider id or name.")],
    as_json: JsonOpt = False,
) -> None:
    """Test a DNS provider's URL and credentials; print its version, zones and warnings."""
    from vpsbridge.services.dns import test_dns_provider

    report = _run(ctx, lambda app: test_dns_provider(app, ref))
    if as_json:
        print_json(report.__dict__)
    else:
        mark = "[green]ok[/green]" if report.ok else "[red]failed[/red]"
        console.print(f"{report.provider} ({report.type}): {mark} - {report.message}")
        if report.version:
            console.print(f"version: {report.version}")
        console.print(f"zones: {len(report.zones)}")
        for warning in report.warnings:
            console.print(f"[yellow]warning:[/yellow] {warning}")
    if not report.ok:
        raise typer.Exit(1)


@dns_app.command("zones")
def dns_zones(
    ctx: typer.Context,
    ref: Annotated[str | None, typer.Argument(help="Provider id or name (all when omitted).")] = None,
    sync: Annotated[bool, typer.Option("--sync", help="Discover the provider's zones first.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List configured zones; --sync mirrors what the provider serves into the catalog first."""
    from vpsbridge.services.dns import list_zones, sync_zones

    if sync and ref is None:
        err_console.print("[red]error:[/red] --sync needs a provider", markup=True)
        raise typer.Exit(2)

    async def work(app: Any) -> tuple[Any, Any]:
        report = await sync_zones(app, ref, Actor.cli()) if sync and ref is not None else None
        return report, await list_zones(app, ref)

    report, zones = _run(ctx, work)
    if as_json:
        print_json({"sync": report.__dict__ if report else None, "zones": [z.__dict__ for z in zones]})
        return
    if report is not None:
        console.print(f"added {len(report.added)}, removed {len(report.removed)}, kept {len(report.kept)}")
        for warning in report.warnings:
            console.print(f"[yellow]warning:[/yellow] {warning}")
    _table(
        "DNS zones",
        ["id", "provider", "zone", "kind", "enabled"],
        [[z.id, z.provider, z.name, z.kind, "yes" if z.enabled else "no"] for z in zones],
    )


@dns_app.command("sync")
def dns_sync(
    ctx: typer.Context,
    server_id: ServerArg,
    mode: Annotated[str, typer.Option("--mode", help="provision, force or delete.")] = "provision",
    now: Annotated[bool, typer.Option("--now", help="Run here instead of queueing a job.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Set a server's DNS records (forward A/AAAA and PTRs)."""
    from vpsbridge.services.dns import enqueue_dns_sync, load_target, sync_server_now

    if mode not in ("provision", "force", "delete"):
        err_console.print("[red]error:[/red] --mode must be provision, force or delete", markup=True)
        raise typer.Exit(2)

    async def log(message: str, level: str = "info") -> None:
        if not as_json:
            console.print(f"{level if level != 'info' else ''} {message}".strip(), markup=False)

    async def work(app: Any) -> dict[str, Any]:
        target = await load_target(app, server_id)
        if now:
            return await sync_server_now(app, target, mode, log=log)  # type: ignore[arg-type]
        extra = {"target": target.as_dict()} if mode == "delete" else {}
        return {"job_id": await enqueue_dns_sync(app, server_id, mode, extra=extra)}

    result = _run(ctx, work)
    if as_json:
        print_json(result)
    elif "job_id" in result:
        console.print(
            f"queued job {result['job_id']}; follow it with `vpsbridge jobs log {result['job_id']}`"
        )
    else:
        console.print(
            f"forward {result['forward_ok']} ok / {result['forward_errors']} errors; "
            f"reverse {result['reverse_ok']} ok / {result['reverse_errors']} errors"
        )


@dns_app.command("ptr-status")
def dns_ptr_status(ctx: typer.Context, server_id: ServerArg, as_json: JsonOpt = False) -> None:
    """Show each address of a server with its PTR and status."""
    from vpsbridge.services.dns import ptr_overview

    rows = _run(ctx, lambda app: ptr_overview(app, server_id))
    if as_json:
        print_json([r.as_dict() for r in rows])
        return
    _table(
        f"Reverse DNS of server {server_id}",
        ["address", "status", "ptr", "ttl", "zone", "note"],
        [[r.ip or r.subnet, r.status, r.ptr, r.ttl, r.zone, r.message] for r in rows],
    )


@dns_app.command("reconcile")
def dns_reconcile(
    ctx: typer.Context,
    server: Annotated[
        list[int] | None, typer.Option("--server", help="Only this server (repeatable).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Reset custom PTRs to the hostname.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Add missing PTRs of live servers now (as the daily task does); --force also resets custom ones."""
    from vpsbridge.services.dns import reconcile_fleet

    if force and not yes and not typer.confirm("Reset every custom PTR of these servers to the hostname?"):
        raise typer.Abort()

    async def log(message: str, level: str = "info") -> None:
        if not as_json:
            console.print(message, markup=False)

    report = _run(ctx, lambda app: reconcile_fleet(app, force=force, server_ids=server or None, log=log))
    if as_json:
        print_json(report.as_dict())
        return
    counts = report.reverse.counts()
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing to do"
    console.print(f"{report.servers} servers: {summary}")
    for conflict in report.conflicts:
        console.print(f"[yellow]warning:[/yellow] {conflict}")
    if report.reverse.errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """The commands joined the catalog's ``dns`` group when this module was imported."""
    del app
