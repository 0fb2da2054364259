"""Catalog and access commands: platforms, products, IP pools, DNS providers, tokens, accounts, keys.

Each command is a thin shell over a service function: parse options, call the service with the CLI
operator as actor, print a rich table (or JSON with ``--json``). A :class:`ServiceError` becomes its
message on stderr and exit code 1. Secrets are taken from options or hidden prompts and are never
printed back; the one exception is a new API token, shown exactly once because it cannot be
recovered later.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from sqlalchemy.exc import DBAPIError

from vpsbridge.config import load_settings
from vpsbridge.services import admins, dns_providers, keys, platforms, pools, products, tokens
from vpsbridge.services.audit import Actor
from vpsbridge.services.context import AppContext
from vpsbridge.services.errors import ServiceError
from vpsbridge.services.schemas import SCOPES
from vpsbridge.store.secrets import (
    SecretDecryptError,
    generate_key,
    key_file_path,
    read_key_file,
    write_key_file,
)

T = TypeVar("T")
#: An option value that means "ask me without echo" (keeps secrets out of shell history).
ASK = "-"

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token", help="API token (stored encrypted). '-' asks for it without echo.", show_default=False
    ),
]
CredentialOpt = Annotated[
    list[str] | None,
    typer.Option("--credential", help="Extra secret as key=value (repeatable; '-' as value asks for it)."),
]
SettingOpt = Annotated[
    list[str] | None,
    typer.Option("--setting", help="Setting as key=value (JSON values allowed; repeatable)."),
]


# --- plumbing ----------------------------------------------------------------------------------


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", markup=True, soft_wrap=True)
    return typer.Exit(1)


def _with_context(typer_ctx: typer.Context, fn: Callable[[AppContext], Awaitable[T]]) -> T:
    """Build the AppContext from ``--config``, run ``fn`` on a fresh loop, always close it.

    Service errors, secrets that no key can read and database failures (an unmigrated schema, an
    unreachable server) become a message and exit code 1; a ConfigError is left to
    ``cli.main.main()`` (exit code 2).
    """
    obj = typer_ctx.obj if isinstance(typer_ctx.obj, dict) else {}
    settings = load_settings(obj.get("config"))

    async def runner() -> T:
        app_ctx = await AppContext.create(settings)
        try:
            return await fn(app_ctx)
        finally:
            await app_ctx.close()

    try:
        return asyncio.run(runner())
    except (ServiceError, SecretDecryptError) as exc:
        raise _fail(str(exc)) from None
    except DBAPIError as exc:
        first_line = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
        raise _fail(
            f"database error: {first_line}\n"
            "If the schema is missing or older than this version, run `vpsbridge migrate` first."
        ) from None
    except OSError as exc:
        raise _fail(
            f"cannot reach the database ({settings.effective_database_url.split('@')[-1]}): {exc}"
        ) from None


def _print_json(data: Any) -> None:
    def plain(value: Any) -> Any:
        if isinstance(value, BaseModel):
            return value.model_dump(mode="json")
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        return value

    sys.stdout.write(json.dumps(plain(data), indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def _table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    out.print(table)


def _details(model: BaseModel) -> None:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    for key, value in model.model_dump(mode="json").items():
        shown = json.dumps(value) if isinstance(value, dict | list) else ("" if value is None else str(value))
        table.add_row(key, shown)
    out.print(table)


def _parse_pairs(pairs: list[str] | None, option: str, *, as_json: bool) -> dict[str, Any]:
    """``key=value`` options into a dict; values are JSON when they parse as JSON (``as_json``)."""
    result: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise _fail(f"{option}: expected key=value, got {pair!r}")
        if as_json:
            try:
                result[key.strip()] = json.loads(value)
            except ValueError:
                result[key.strip()] = value
        else:
            result[key.strip()] = value
    return result


def _credentials(token: str | None, pairs: list[str] | None) -> dict[str, Any] | None:
    creds = _parse_pairs(pairs, "--credential", as_json=False)
    for key, value in list(creds.items()):
        if value == ASK:
            creds[key] = typer.prompt(key, hide_input=True)
    if token == ASK:
        token = typer.prompt("API token", hide_input=True)
    if token:
        creds["token"] = token
    return creds or None


def _actor() -> Actor:
    return Actor.cli()


def _yes_or_abort(yes: bool, question: str) -> None:
    if not yes and not typer.confirm(question):
        raise typer.Abort()


def _report_added(item: Any, noun: str, as_json: bool, detail: str = "") -> None:
    """What every ``add`` prints: the object as JSON, or one line with its name and id."""
    if as_json:
        _print_json(item)
    else:
        out.print(f"{noun} [bold]{item.name}[/bold] added (id {item.id}{detail}).")


def _listing(
    rows: Sequence[Any],
    as_json: bool,
    title: str,
    columns: Sequence[str],
    row: Callable[[Any], Sequence[Any]],
) -> None:
    """What every ``list`` prints: JSON, or a table with one ``row(item)`` per item."""
    if as_json:
        _print_json(rows)
    else:
        _table(title, columns, [row(item) for item in rows])


def _show_and_remove(
    app: typer.Typer,
    noun: str,
    *,
    get: Callable[[AppContext, str], Awaitable[BaseModel]] | None,
    delete: Callable[[AppContext, str, Actor], Awaitable[Any]],
    show_help: str = "",
    remove_help: str,
) -> None:
    """Register the ``show`` and ``remove`` commands a catalogue object has (by id or name)."""
    if get is not None:
        fetch = get

        @app.command("show", help=show_help)
        def show(
            ctx: typer.Context,
            ref: Annotated[str, typer.Argument(help="Id or name.")],
            as_json: JsonOpt = False,
        ) -> None:
            item = _with_context(ctx, lambda c: fetch(c, ref))
            _print_json(item) if as_json else _details(item)

    @app.command("remove", help=remove_help)
    def remove(
        ctx: typer.Context, ref: Annotated[str, typer.Argument(help="Id or name.")], yes: YesOpt = False
    ) -> None:
        _yes_or_abort(yes, f"Remove {noun} {ref}?")
        _with_context(ctx, lambda c: delete(c, ref, _actor()))
        out.print(f"{noun[:1].upper()}{noun[1:]} {ref} removed.")


# --- platforms --------------------------------------------------------------------------------

platform_app = typer.Typer(help="Hypervisor platforms (VirtFusion, Proxmox VE).", no_args_is_help=True)


@platform_app.command("add")
def platform_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A short unique name, e.g. pve-fra.")],
    type_: Annotated[str, typer.Option("--type", help="Platform type (virtfusion, proxmox, ...).")],
    url: Annotated[str, typer.Option("--url", help="Base URL of the platform's API.")],
    token: TokenOpt = None,
    credential: CredentialOpt = None,
    no_verify_tls: Annotated[
        bool, typer.Option("--no-verify-tls", help="Accept any TLS certificate.")
    ] = False,
    ca_bundle: Annotated[
        Path | None,
        typer.Option("--ca-bundle", help="PEM file of the CA that signed the platform's certificate."),
    ] = None,
    setting: SettingOpt = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it disabled.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Register a platform; credentials are stored encrypted and never shown again."""
    data: dict[str, Any] = {
        "name": name,
        "type": type_,
        "url": url,
        "credentials": _credentials(token, credential),
        "verify_tls": not no_verify_tls,
        "ca_bundle": ca_bundle.read_text() if ca_bundle else None,
        "settings": _parse_pairs(setting, "--setting", as_json=True),
        "enabled": not disabled,
    }
    created = _with_context(ctx, lambda c: platforms.create_platform(c, data, _actor()))
    _report_added(created, "Platform", as_json)


@platform_app.command("list")
def platform_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List platforms."""
    rows = _with_context(ctx, platforms.list_platforms)
    _listing(
        rows,
        as_json,
        "Platforms",
        ["id", "name", "type", "url", "credentials", "tls", "enabled"],
        lambda p: (
            p.id,
            p.name,
            p.type,
            p.url,
            "set" if p.has_credentials else "-",
            "verify" if p.verify_tls else "no verify",
            "yes" if p.enabled else "no",
        ),
    )


@platform_app.command("test")
def platform_test(
    ctx: typer.Context, ref: Annotated[str, typer.Argument(help="Id or name.")], as_json: JsonOpt = False
) -> None:
    """Check the URL and credentials against the platform; names each missing permission."""
    report = _with_context(ctx, lambda c: platforms.test_platform(c, ref))
    data: Any = report.model_dump(mode="json") if isinstance(report, BaseModel) else report
    if as_json:
        _print_json(data)
    elif isinstance(data, dict):
        verdict = "[green]OK[/green]" if data.get("ok") else "[red]FAILED[/red]"
        version = f" (version {data['version']})" if data.get("version") else ""
        out.print(f"Connection test: {verdict}{version}")
        _table(
            "Checks",
            ["check", "result", "detail"],
            [
                (c.get("name"), "ok" if c.get("ok") else "FAIL", c.get("detail"))
                for c in data.get("checks", [])
            ],
        )
    else:
        out.print(str(data))
    if isinstance(data, dict) and data.get("ok") is False:
        raise typer.Exit(1)


_show_and_remove(
    platform_app,
    "platform",
    get=platforms.get_platform,
    delete=platforms.delete_platform,
    show_help="Show one platform (credentials are never shown).",
    remove_help="Delete a platform nothing uses any more.",
)


# --- products ---------------------------------------------------------------------------------

product_app = typer.Typer(
    help="Products: platform, placement, plan defaults, stock, DNS zone.", no_args_is_help=True
)


@product_app.command("add")
def product_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Product name as customers see it.")],
    platform: Annotated[str, typer.Option("--platform", help="Platform id or name.")],
    billing_id: Annotated[str | None, typer.Option("--billing-id", help="The billing product id.")] = None,
    plan: Annotated[
        list[str] | None, typer.Option("--plan", help="Plan default key=value (repeatable).")
    ] = None,
    placement: Annotated[
        list[str] | None, typer.Option("--placement", help="Placement key=value (repeatable).")
    ] = None,
    stock_control: Annotated[
        bool, typer.Option("--stock-control", help="Keep billing stock in sync.")
    ] = False,
    stock_buffer: Annotated[
        float, typer.Option("--stock-buffer", help="Capacity kept free, in percent (0-100).")
    ] = 10.0,
    dns_zone: Annotated[
        str | None, typer.Option("--dns-zone", help="Forward DNS zone for hostnames.")
    ] = None,
    setting: SettingOpt = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it disabled.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a product."""
    data: dict[str, Any] = {
        "name": name,
        "platform": platform,
        "billing_product_id": billing_id,
        "plan": _parse_pairs(plan, "--plan", as_json=True),
        "placement": _parse_pairs(placement, "--placement", as_json=True),
        "stock_control": stock_control,
        "stock_buffer_pct": stock_buffer,
        "dns_zone": dns_zone,
        "settings": _parse_pairs(setting, "--setting", as_json=True),
        "enabled": not disabled,
    }
    created = _with_context(ctx, lambda c: products.create_product(c, data, _actor()))
    _report_added(created, "Product", as_json)


@product_app.command("list")
def product_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List products."""
    rows = _with_context(ctx, products.list_products)
    _listing(
        rows,
        as_json,
        "Products",
        ["id", "name", "billing id", "platform", "stock", "buffer %", "dns zone", "enabled"],
        lambda p: (
            p.id,
            p.name,
            p.billing_product_id,
            p.platform_name,
            "on" if p.stock_control else "off",
            f"{p.stock_buffer_pct:g}",
            p.dns_zone,
            "yes" if p.enabled else "no",
        ),
    )


_show_and_remove(
    product_app,
    "product",
    get=products.get_product,
    delete=products.delete_product,
    show_help="Show one product.",
    remove_help="Delete a product no service uses.",
)


# --- IP pools ---------------------------------------------------------------------------------

pool_app = typer.Typer(help="IP pools servers get their addresses from.", no_args_is_help=True)


@pool_app.command("add")
def pool_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A short unique name, e.g. fra-v4.")],
    network: Annotated[str, typer.Option("--network", help="CIDR, e.g. 192.0.2.0/24 or 2001:db8::/48.")],
    platform: Annotated[str | None, typer.Option("--platform", help="Platform id or name.")] = None,
    scope: Annotated[str | None, typer.Option("--scope", help="Node or group the pool serves.")] = None,
    range_start: Annotated[
        str | None, typer.Option("--range-start", help="First assignable address.")
    ] = None,
    range_end: Annotated[str | None, typer.Option("--range-end", help="Last assignable address.")] = None,
    gateway: Annotated[str | None, typer.Option("--gateway", help="Default gateway.")] = None,
    prefix_length: Annotated[
        int | None, typer.Option("--prefix-length", help="Prefix length on servers (default: the network's).")
    ] = None,
    dns_server: Annotated[
        list[str] | None, typer.Option("--dns-server", help="Resolver address (repeatable).")
    ] = None,
    bridge: Annotated[str | None, typer.Option("--bridge", help="Bridge interface, e.g. vmbr0.")] = None,
    vlan: Annotated[int | None, typer.Option("--vlan", help="VLAN tag (1-4094).")] = None,
    setting: SettingOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an IP pool (the network, range and gateway are checked)."""
    data: dict[str, Any] = {
        "name": name,
        "network": network,
        "platform": platform,
        "scope": scope,
        "range_start": range_start,
        "range_end": range_end,
        "gateway": gateway,
        "prefix_length": prefix_length,
        "dns_servers": dns_server or [],
        "bridge": bridge,
        "vlan": vlan,
        "settings": _parse_pairs(setting, "--setting", as_json=True),
    }
    created = _with_context(ctx, lambda c: pools.create_pool(c, data, _actor()))
    _report_added(created, "IP pool", as_json, f", {created.size} addresses")


@pool_app.command("list")
def pool_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List IP pools with their usage."""
    rows = _with_context(ctx, pools.list_pools)
    _listing(
        rows,
        as_json,
        "IP pools",
        ["id", "name", "network", "range", "gateway", "platform", "scope", "used", "free"],
        lambda p: (
            p.id,
            p.name,
            p.network,
            f"{p.range_start or ''}-{p.range_end or ''}" if p.range_start or p.range_end else "",
            p.gateway,
            p.platform_name,
            p.scope,
            p.allocated + p.reserved,
            p.free,
        ),
    )


_show_and_remove(
    pool_app,
    "IP pool",
    get=pools.get_pool,
    delete=pools.delete_pool,
    show_help="Show one IP pool.",
    remove_help="Delete an IP pool without assigned addresses.",
)


# --- DNS providers ------------------------------------------------------------------------------

dns_app = typer.Typer(help="DNS providers (PowerDNS, Cloudflare, HestiaCP).", no_args_is_help=True)


@dns_app.command("add")
def dns_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A short unique name.")],
    type_: Annotated[str, typer.Option("--type", help="Provider type (powerdns, cloudflare, hestiacp).")],
    url: Annotated[str | None, typer.Option("--url", help="API URL (when the provider has one).")] = None,
    token: TokenOpt = None,
    credential: CredentialOpt = None,
    setting: SettingOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a DNS provider; credentials are stored encrypted and never shown again."""
    data: dict[str, Any] = {
        "name": name,
        "type": type_,
        "url": url,
        "credentials": _credentials(token, credential),
        "settings": _parse_pairs(setting, "--setting", as_json=True),
    }
    created = _with_context(ctx, lambda c: dns_providers.create_dns_provider(c, data, _actor()))
    _report_added(created, "DNS provider", as_json)


@dns_app.command("list")
def dns_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List DNS providers."""
    rows = _with_context(ctx, dns_providers.list_dns_providers)
    _listing(
        rows,
        as_json,
        "DNS providers",
        ["id", "name", "type", "url", "credentials", "zones", "enabled"],
        lambda p: (
            p.id,
            p.name,
            p.type,
            p.url,
            "set" if p.has_credentials else "-",
            p.zone_count,
            "yes" if p.enabled else "no",
        ),
    )


_show_and_remove(
    dns_app,
    "DNS provider",
    get=None,
    delete=dns_providers.delete_dns_provider,
    remove_help="Delete a DNS provider without zones.",
)


# --- API tokens ---------------------------------------------------------------------------------

token_app = typer.Typer(help="Operator API tokens for /api/v1.", no_args_is_help=True)


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. 'ci deploy'.")],
    scope: Annotated[str, typer.Option("--scope", help="read, write or admin.")] = "read",
    expires_days: Annotated[
        int | None, typer.Option("--expires-days", min=1, help="Expire after this many days.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a token; it is printed once and cannot be shown again."""
    if scope not in SCOPES:
        raise _fail(f"--scope must be one of {', '.join(SCOPES)}")
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=expires_days) if expires_days else None
    info, plaintext = _with_context(
        ctx, lambda c: tokens.create_token(c, name, scope, _actor(), expires_at=expires)
    )
    if as_json:
        _print_json({"token": plaintext, **info.model_dump(mode="json")})
        return
    out.print(f"Token [bold]{info.name}[/bold] (prefix {info.prefix}, scope {info.scope}) created.")
    out.print("Copy it now; it will not be shown again:")
    sys.stdout.write(plaintext + "\n")


@token_app.command("list")
def token_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List tokens (never their secrets)."""
    rows = _with_context(ctx, tokens.list_tokens)

    def when(value: dt.datetime | None) -> str:
        return value.strftime("%Y-%m-%d %H:%M") if value else ""

    _listing(
        rows,
        as_json,
        "API tokens",
        ["id", "name", "prefix", "scope", "active", "last used", "expires", "created by"],
        lambda t: (
            t.id,
            t.name,
            t.prefix,
            t.scope,
            "yes" if t.active else "no",
            when(t.last_used_at),
            when(t.expires_at),
            t.created_by,
        ),
    )


@token_app.command("revoke")
def token_revoke(ctx: typer.Context, ref: Annotated[str, typer.Argument(help="Token id or prefix.")]) -> None:
    """Revoke a token at once."""
    info = _with_context(ctx, lambda c: tokens.revoke_token(c, ref, _actor()))
    out.print(f"Token {info.prefix} ({info.name}) revoked.")


# --- operator accounts --------------------------------------------------------------------------

admin_app = typer.Typer(help="Operator accounts of the console.", no_args_is_help=True)


@admin_app.command("create-user")
def admin_create_user(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="Login name.")],
    password: Annotated[
        str | None,
        typer.Option("--password", help="Password (at least 12 characters); asked for when omitted."),
    ] = None,
) -> None:
    """Create an operator account."""
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    secret = password
    created = _with_context(ctx, lambda c: admins.create_admin(c, username, secret, _actor()))
    out.print(f"Operator account [bold]{created.username}[/bold] created.")


# --- encryption keys ----------------------------------------------------------------------------

keys_app = typer.Typer(help="Encryption keys of stored secrets.", no_args_is_help=True)


@keys_app.command("generate")
def keys_generate(
    ctx: typer.Context,
    add: Annotated[
        bool,
        typer.Option("--add", help="Prepend the key to the data directory's key file (embedded mode)."),
    ] = False,
) -> None:
    """Make a new key. Put it first in VPSBRIDGE_ENCRYPTION_KEYS (or use --add), then run `keys rotate`."""
    key = generate_key()
    if not add:
        sys.stdout.write(key + "\n")
        return
    obj = ctx.obj if isinstance(ctx.obj, dict) else {}
    settings = load_settings(obj.get("config"))
    if settings.encryption_keys:
        raise _fail(
            "keys come from VPSBRIDGE_ENCRYPTION_KEYS; add the new key there (first) instead of --add"
        )
    path = key_file_path(settings)
    existing = read_key_file(path) if path.exists() else []
    write_key_file(path, [key, *existing])
    out.print(f"New key added first to {path} ({len(existing) + 1} keys). Now run `vpsbridge keys rotate`.")


@keys_app.command("rotate")
def keys_rotate(ctx: typer.Context) -> None:
    """Re-encrypt every stored secret with the newest key; afterwards older keys can be removed."""
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err, transient=False
    ) as progress:
        tasks: dict[str, Any] = {}

        def report(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = progress.add_task(label, total=max(total, 1))
            progress.update(tasks[label], completed=done if total else 1, total=max(total, 1))

        result = _with_context(ctx, lambda c: keys.rotate_secrets(c, _actor(), progress=report))
    for label, count in sorted(result.counts.items()):
        out.print(f"{label}: {count} re-encrypted")
    out.print(f"[bold]{result.total}[/bold] secret(s) re-encrypted with the newest key.")


def register(app: typer.Typer) -> None:
    app.add_typer(platform_app, name="platform")
    app.add_typer(product_app, name="product")
    app.add_typer(pool_app, name="pool")
    app.add_typer(dns_app, name="dns")
    app.add_typer(token_app, name="token")
    app.add_typer(admin_app, name="admin")
    app.add_typer(keys_app, name="keys")
