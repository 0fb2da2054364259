"""``vpsbridge portal link SERVICE``: a one-time sign-in link to the client portal.

Support staff use it to see exactly what a client sees, or to hand a client a link when the billing
area is unreachable. The link works once, for two minutes; minting it is recorded in the audit log.
"""

from __future__ import annotations

from typing import Annotated

import typer

from vpsbridge.cli._runtime import print_json, run_with_context
from vpsbridge.services.context import AppContext
from vpsbridge.services.errors import ServiceError

portal_app = typer.Typer(help="Client portal helpers.", no_args_is_help=True)


@portal_app.command("link")
def link(
    typer_ctx: typer.Context,
    service: Annotated[str, typer.Argument(help="Service id, or billing:<billing service id>.")],
    base_url: Annotated[
        str | None, typer.Option(help="Base URL of the portal (default: public_url).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (url, client, service, expiry).")
    ] = False,
) -> None:
    """Print a single-use portal sign-in link for SERVICE's owner."""
    from vpsbridge.services.audit import Actor
    from vpsbridge.services.portal import PortalLink, mint_portal_link

    async def run(ctx: AppContext) -> PortalLink:
        return await mint_portal_link(ctx, service, Actor.cli(), base_url=base_url)

    try:
        result = run_with_context(typer_ctx, run)
    except ServiceError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        print_json(
            {
                "url": result.url,
                "client_id": result.client_id,
                "service_id": result.service_id,
                "expires_at": result.expires_at.isoformat(),
            }
        )
    else:
        typer.echo(result.url)


def register(app: typer.Typer) -> None:
    app.add_typer(portal_app, name="portal")
