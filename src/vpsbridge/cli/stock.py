"""``vpsbridge stock``: compute from files, recalculate now, explain and show live stock.

``stock compute`` needs no database or platform: it runs the math on saved API answers (the package's
``GET /packages/{id}`` and each group's ``.../resources``), which is how an operator checks a figure
against what the panel said. The other commands work on the configured database.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from vpsbridge.cli._runtime import console, err_console, print_json, run_with_context
from vpsbridge.core.stock import MalformedInput, compute_quantity
from vpsbridge.core.stock.virtfusion import unwrap

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

stock_app = typer.Typer(help="Live stock: compute, recalculate, explain, show.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(1)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _fail(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise _fail(f"{what} {path} is not JSON: {exc}") from None


def _group_entries(document: Any) -> Any:
    """A group file may hold the entries list, one paginated answer, or a list of page answers."""
    if isinstance(document, dict):
        return unwrap(document)
    if isinstance(document, list) and document and all(isinstance(p, dict) and "data" in p for p in document):
        return [entry for page in document for entry in (page.get("data") or [])]
    return document


@stock_app.command("compute")
def compute(
    package: Annotated[Path, typer.Option("--package", help="GET /packages/{id} answer (or its data).")],
    group: Annotated[
        list[Path], typer.Option("--group", help="A group's resources answer or entries list (repeatable).")
    ],
    ipv4: Annotated[int, typer.Option("--ipv4", min=1, help="IPv4 addresses each server needs.")] = 1,
    buffer: Annotated[
        float, typer.Option("--buffer", min=0.0, max=100.0, help="Safety buffer in % of capped resources.")
    ] = 10.0,
) -> None:
    """Compute a quantity from saved VirtFusion answers; prints {"quantity": N, "breakdown": ...}."""
    pkg = unwrap(_read_json(package, "package file"))
    groups = [_group_entries(_read_json(path, "group file")) for path in group]
    try:
        result = compute_quantity(pkg, groups, ipv4_per_server=ipv4, buffer_pct=buffer)
    except MalformedInput as exc:
        raise _fail(f"cannot read the inputs: {exc}") from None
    print_json({"quantity": result.quantity, "breakdown": result.breakdown})


def _run(typer_ctx: typer.Context, fn: Any) -> Any:
    from vpsbridge.services.errors import ServiceError

    try:
        return run_with_context(typer_ctx, fn)
    except ServiceError as exc:
        raise _fail(str(exc)) from None


def _table(rows: list[Any]) -> Table:
    table = Table("id", "product", "platform", "stock control", "quantity", "status", "age", "why unknown")
    for r in rows:
        age = "-" if r.age_seconds is None else f"{r.age_seconds:.0f}s"
        table.add_row(
            str(r.product_id),
            r.product,
            r.platform,
            "yes" if r.stock_control else "no",
            "-" if r.quantity is None else str(r.quantity),
            r.status,
            age,
            "; ".join(r.unknown),
        )
    return table


@stock_app.command("recalc")
def recalc(
    ctx: typer.Context,
    product: Annotated[
        list[str] | None, typer.Option("--product", "-p", help="Only this product (id or name; repeatable).")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Recalculate now: every stock-controlled product (or the ones named), with a summary."""
    from vpsbridge.services.stock import recalculate

    async def run(app: AppContext) -> Any:
        return await recalculate(app, product or None, forget=True)

    report = _run(ctx, run)
    if json_:
        print_json(report)
        return
    console.print(_table(report.products))
    s = report.summary
    console.print(f"{s.total} products: {s.updated} in stock, {s.zeroed} at 0, {s.skipped} left untouched")


@stock_app.command("show")
def show(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """What every product currently shows (stored results; nothing is recomputed)."""
    from vpsbridge.services.stock import results

    async def run(app: AppContext) -> Any:
        return await results(app)

    rows = _run(ctx, run)
    if json_:
        print_json(rows)
        return
    console.print(_table(rows))


@stock_app.command("explain")
def explain(
    ctx: typer.Context,
    product: Annotated[str, typer.Argument(help="Product id or name.")],
    fresh: Annotated[bool, typer.Option("--fresh", help="Recompute before explaining.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Why a product shows what it shows: per group, per hypervisor, the binding resource."""
    from vpsbridge.services.stock import explain as explain_stock
    from vpsbridge.services.stock import explain_lines

    async def run(app: AppContext) -> Any:
        return await explain_stock(app, product, fresh=fresh)

    explanation = _run(ctx, run)
    if json_:
        print_json(explanation)
        return
    for line in explain_lines(explanation):
        console.print(line, markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(stock_app, name="stock")
