"""The ``vpsbridge`` command line.

Each domain keeps its commands in its own module with a ``register(app)`` function; this module only
assembles them and turns configuration errors into a clear message and exit code 2.
"""

from __future__ import annotations

import sys

import typer

from vpsbridge.cli import catalog, dns_ops, ipam, jobs, portal, services, stock, system
from vpsbridge.config import ConfigError

app = typer.Typer(
    name="vpsbridge",
    help="VPS hosting automation: provisioning, durable deploys, IP pools, live stock and DNS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for module in (system, catalog, jobs, dns_ops, stock, services, portal, ipam):
    module.register(app)


def main() -> None:
    try:
        app()
    except ConfigError as exc:
        typer.echo(f"vpsbridge: {exc}", err=True)
        sys.exit(2)
