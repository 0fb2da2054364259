"""``vpsbridge service ...``: drive the service lifecycle without billing.

Thin shells over :mod:`vpsbridge.services.provisioning`: the same functions the billing bridge and
the JSON API call, with the CLI operator as actor. Slow work (build, termination) runs in the
worker; these commands print what was recorded and the job that carries on. A service is named by
its id or ``billing:<billing service id>``. Errors are one readable line and exit code 1.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from vpsbridge.cli._runtime import console, err_console, print_json, run_with_context
from vpsbridge.services import provisioning as prov
from vpsbridge.services.audit import Actor
from vpsbridge.services.context import AppContext
from vpsbridge.services.errors import ServiceError

T = TypeVar("T")

service_app = typer.Typer(
    help="Billing services and their servers: create, suspend, terminate ...", no_args_is_help=True
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
RefArg = Annotated[str, typer.Argument(help="Service id or billing:<billing service id>.")]


def _run(typer_ctx: typer.Context, fn: Callable[[AppContext], Awaitable[T]]) -> T:
    try:
        return run_with_context(typer_ctx, fn)
    except ServiceError as exc:
        err_console.print(f"[red]error:[/red] {exc.message}", markup=True, soft_wrap=True)
        raise typer.Exit(1) from None


def _show_service(service: prov.ServiceOut) -> None:
    server = service.server
    rows = [
        ("id", str(service.id)),
        ("billing service", service.billing_service_id or "-"),
        ("client", service.client_id),
        ("product", service.product_name or "-"),
        ("platform", f"{service.platform_name or '-'} ({service.platform_type or '-'})"),
        ("status", service.status),
    ]
    if server is not None:
        rows += [
            ("server", f"{server.id} (platform id {server.external_id or '-'}, {server.state})"),
            ("hostname", server.hostname or "-"),
            ("IPv4", ", ".join(server.ipv4) or "-"),
            ("IPv6", ", ".join(server.ipv6) or "-"),
            ("login stored", "yes" if server.has_credentials else "no"),
        ]
    if service.job_id:
        rows.append(("job", str(service.job_id)))
    if service.warnings:
        rows.append(("warnings", "; ".join(service.warnings)))
    if service.last_error:
        rows.append(("last error", service.last_error))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        console.print(f"{key.ljust(width)}  {value}", markup=False, soft_wrap=True)


def _show_action(result: prov.ActionOut, as_json: bool) -> None:
    if as_json:
        print_json(result)
        return
    line = f"{result.action}: {result.outcome}"
    if result.job_id:
        line += f" (job {result.job_id})"
    if result.message:
        line += f" - {result.message}"
    console.print(line, markup=False)
    for warning in result.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {warning}", markup=True, soft_wrap=True)
    _show_service(result.service)


def _options(values: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--option")
        out[key.strip()] = value
    return out


@service_app.command("create")
def create(
    typer_ctx: typer.Context,
    product: Annotated[str, typer.Option("--product", help="Product id, name or billing:<id>.")],
    client: Annotated[str, typer.Option("--client", help="Billing client id (owner).")],
    billing_id: Annotated[
        str | None, typer.Option("--billing-id", help="Billing service id (makes create idempotent).")
    ] = None,
    os_template: Annotated[str | None, typer.Option("--os", help="OS template id to install.")] = None,
    hostname: Annotated[str | None, typer.Option("--hostname")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Display name on the platform.")] = None,
    ssh_key: Annotated[
        list[str] | None, typer.Option("--ssh-key", help="Key id or public key (repeatable).")
    ] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", help="Configurable option NAME=VALUE (repeatable).")
    ] = None,
    client_name: Annotated[str, typer.Option("--client-name")] = "",
    client_email: Annotated[str, typer.Option("--client-email")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Record a service and have the platform create its server; the build runs in the worker."""
    data = {
        "billing_service_id": billing_id,
        "client_id": client,
        "client": {"name": client_name, "email": client_email},
        "product": product,
        "options": _options(option),
        "os_template": os_template,
        "hostname": hostname,
        "name": name,
        "ssh_keys": list(ssh_key or []),
    }
    result = _run(typer_ctx, lambda ctx: prov.create_service(ctx, data, Actor.cli()))
    if as_json:
        print_json(result)
    else:
        _show_service(result)


@service_app.command("list")
def list_(
    typer_ctx: typer.Context,
    status: Annotated[str | None, typer.Option("--status")] = None,
    client: Annotated[str | None, typer.Option("--client")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Services, newest first."""
    rows = _run(typer_ctx, lambda ctx: prov.list_services(ctx, status=status, client_id=client, limit=limit))
    if as_json:
        print_json(rows)
        return
    table = Table("id", "billing", "client", "product", "status", "server", "IPv4", "hostname")
    for s in rows:
        table.add_row(
            str(s.id),
            s.billing_service_id or "-",
            s.client_id,
            s.product_name or "-",
            s.status,
            (s.server.external_id or "-") if s.server else "-",
            ", ".join(s.server.ipv4) if s.server else "-",
            (s.server.hostname or "-") if s.server else "-",
        )
    console.print(table)


@service_app.command("show")
def show(typer_ctx: typer.Context, ref: RefArg, as_json: JsonOpt = False) -> None:
    """One service with its server."""
    result = _run(typer_ctx, lambda ctx: prov.get_service(ctx, ref))
    if as_json:
        print_json(result)
    else:
        _show_service(result)


@service_app.command("suspend")
def suspend(
    typer_ctx: typer.Context,
    ref: RefArg,
    reason: Annotated[str | None, typer.Option("--reason")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Suspend the server (the client loses access)."""
    _show_action(
        _run(typer_ctx, lambda ctx: prov.suspend_service(ctx, ref, Actor.cli(), reason=reason)), as_json
    )


@service_app.command("unsuspend")
def unsuspend(typer_ctx: typer.Context, ref: RefArg, as_json: JsonOpt = False) -> None:
    """Lift a suspension."""
    _show_action(_run(typer_ctx, lambda ctx: prov.unsuspend_service(ctx, ref, Actor.cli())), as_json)


@service_app.command("terminate")
def terminate(
    typer_ctx: typer.Context,
    ref: RefArg,
    delay: Annotated[
        float | None, typer.Option("--delay", help="Seconds before deletion (default: product setting).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete the server (after the delay) and end the service."""
    if not yes and not typer.confirm(f"Terminate service {ref} and delete its server?"):
        raise typer.Exit(1)
    result = _run(typer_ctx, lambda ctx: prov.terminate_service(ctx, ref, Actor.cli(), delay_seconds=delay))
    _show_action(result, as_json)


@service_app.command("change-package")
def change_package(
    typer_ctx: typer.Context,
    ref: RefArg,
    product: Annotated[str | None, typer.Option("--product", help="New product (same platform).")] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", help="Configurable option NAME=VALUE (replaces all).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Move the server to another product and/or options; prints the platform's warnings."""
    data: dict[str, Any] = {}
    if product is not None:
        data["product"] = product
    if option:
        data["options"] = _options(option)
    _show_action(_run(typer_ctx, lambda ctx: prov.change_package(ctx, ref, data, Actor.cli())), as_json)


@service_app.command("reset-password")
def reset_password(typer_ctx: typer.Context, ref: RefArg, as_json: JsonOpt = False) -> None:
    """Set a new root password and print it (once)."""
    result = _run(typer_ctx, lambda ctx: prov.reset_password(ctx, ref, Actor.cli()))
    if as_json:
        print_json(result)
    else:
        console.print(f"{result.username}: {result.password}", markup=False)


@service_app.command("credentials")
def credentials(typer_ctx: typer.Context, ref: RefArg, as_json: JsonOpt = False) -> None:
    """Print the stored login of the service's server."""
    result = _run(typer_ctx, lambda ctx: prov.service_credentials(ctx, ref))
    if as_json:
        print_json(result)
    else:
        console.print(f"{result.username}: {result.password}", markup=False)


@service_app.command("power")
def power(
    typer_ctx: typer.Context,
    ref: RefArg,
    action: Annotated[str, typer.Argument(help="start, stop, shutdown, restart or reset.")],
    as_json: JsonOpt = False,
) -> None:
    """Power action on the server."""
    _show_action(_run(typer_ctx, lambda ctx: prov.power_service(ctx, ref, action, Actor.cli())), as_json)  # type: ignore[arg-type]


@service_app.command("rename")
def rename(
    typer_ctx: typer.Context,
    ref: RefArg,
    hostname: Annotated[str, typer.Argument()],
    name: Annotated[str | None, typer.Option("--name", help="Display name on the platform.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change the server's host name (and display name)."""
    result = _run(
        typer_ctx, lambda ctx: prov.rename_service(ctx, ref, Actor.cli(), hostname=hostname, name=name)
    )
    _show_action(result, as_json)


@service_app.command("resolve")
def resolve(
    typer_ctx: typer.Context,
    ref: RefArg,
    external_id: Annotated[
        str | None, typer.Option("--external-id", help="The platform created it: its server id.")
    ] = None,
    not_created: Annotated[
        bool, typer.Option("--not-created", help="Checked: no server was created.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Settle a create whose outcome is unknown (after checking the platform)."""
    if (external_id is None) == (not not_created):
        err_console.print("[red]error:[/red] give exactly one of --external-id or --not-created", markup=True)
        raise typer.Exit(1)
    result = _run(
        typer_ctx, lambda ctx: prov.resolve_unknown_create(ctx, ref, Actor.cli(), external_id=external_id)
    )
    if as_json:
        print_json(result)
    else:
        _show_service(result)


def register(app: typer.Typer) -> None:
    app.add_typer(service_app, name="service")


__all__ = ["register", "service_app"]
