"""What every CLI command shares: settings from ``--config``, one AppContext per run, output helpers.

Commands are synchronous Typer functions; the work is async. :func:`run_with_context` is the single
bridge between the two, so every command builds and closes its :class:`AppContext` the same way and a
:class:`~vpsbridge.config.ConfigError` always reaches ``cli.main.main()`` unwrapped (it prints the
message and exits with code 2, without a traceback).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console

from vpsbridge.config import Settings, load_settings

if TYPE_CHECKING:  # imported lazily so ``--help`` and ``version`` stay fast and independent
    from vpsbridge.services.context import AppContext

T = TypeVar("T")

#: Human-facing output (tables, panels, progress). Machine output goes through :func:`print_json`.
console = Console(highlight=False)
#: Errors and warnings, so that ``--json`` output on stdout stays parseable.
err_console = Console(stderr=True, highlight=False)


def config_path(typer_ctx: typer.Context) -> Path | None:
    """The ``--config`` file given to the root command (stored by its callback), if any."""
    root = typer_ctx.find_root()
    obj = root.obj if isinstance(root.obj, dict) else {}
    path = obj.get("config")
    return Path(path) if path is not None else None


def settings_for(typer_ctx: typer.Context, **overrides: Any) -> Settings:
    """Load settings for this invocation; raises :class:`ConfigError` (exit code 2) when invalid.

    ``overrides`` are command-line options that win over every other source; ``None`` values are
    dropped so an option the operator did not give never masks the environment or the config file.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    return load_settings(config_path(typer_ctx), **given)


def run_with_context(
    typer_ctx: typer.Context,
    coro_fn: Callable[[AppContext], Awaitable[T]],
    *,
    settings: Settings | None = None,
) -> T:
    """Build the AppContext, run ``coro_fn(ctx)`` on a fresh event loop, and always close the context."""
    from vpsbridge.services.context import AppContext

    resolved = settings if settings is not None else settings_for(typer_ctx)

    async def runner() -> T:
        ctx = await AppContext.create(resolved)
        try:
            return await coro_fn(ctx)
        finally:
            await ctx.close()

    return asyncio.run(runner())


def print_json(data: Any) -> None:
    """Write ``data`` as indented JSON on stdout (dates, paths and pydantic models included)."""
    sys.stdout.write(json.dumps(_jsonable(data), indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def _jsonable(data: Any) -> Any:
    dump = getattr(data, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(data, list | tuple):
        return [_jsonable(item) for item in data]
    if isinstance(data, dict):
        return {str(key): _jsonable(value) for key, value in data.items()}
    return data
