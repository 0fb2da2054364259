"""Job engine commands: ``worker``, ``cron`` and ``jobs list|show|log|cancel|reset``.

Live output (``worker --verbose``, ``cron``) is written one line at a time and flushed at once, so
``journalctl -f``, a pipe into ``grep`` or a cron mail shows each step as it happens, not when a
buffer fills.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vpsbridge.cli._runtime import console, err_console, print_json, run_with_context, settings_for

if TYPE_CHECKING:
    from vpsbridge.jobs.queue import LogLine
    from vpsbridge.services.context import AppContext
    from vpsbridge.store.models import Job

jobs_app = typer.Typer(help="Inspect and manage jobs (list, show, log, cancel, reset).", no_args_is_help=True)


def _print_line(line: LogLine) -> None:
    sys.stdout.write(line.format() + "\n")
    sys.stdout.flush()


# --- worker ----------------------------------------------------------------------------------------
def worker(
    ctx: typer.Context,
    concurrency: Annotated[
        int | None, typer.Option(min=1, max=1000, help="Jobs run at once (default: worker_concurrency).")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Stream every job log line to stdout as it is written.")
    ] = False,
) -> None:
    """Claim and run jobs, and fire due periodic tasks, until SIGTERM or Ctrl-C."""
    settings = settings_for(ctx)
    import vpsbridge.billing.whmcs.credit  # self-service auto top-off after usage_sync
    import vpsbridge.billing.whmcs.report  # noqa: F401 - reports job outcomes back to WHMCS
    from vpsbridge.jobs.worker import Worker
    from vpsbridge.logs import configure_logging

    configure_logging(settings)

    async def run(app: AppContext) -> None:
        w = Worker(app, concurrency=concurrency, verbose_sink=_print_line if verbose else None)
        await w.run_forever(install_signal_handlers=True)

    run_with_context(ctx, run, settings=settings)


# --- cron ------------------------------------------------------------------------------------------
def _fmt_time(value: Any) -> str:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z") if value is not None else "-"


def cron(
    ctx: typer.Context,
    task: Annotated[str | None, typer.Option("--task", "-t", help="Run only this task.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Run even when not due (or disabled).")] = False,
    list_: Annotated[bool, typer.Option("--list", help="Show tasks, intervals, last and next runs.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="With --list: print JSON.")] = False,
) -> None:
    """Run due periodic tasks once in this process, streaming their log (for system cron).

    Exits 1 when a task reported errors, so cron mails the operator.
    """
    import vpsbridge.billing.whmcs.credit  # noqa: F401 - self-service auto top-off after usage_sync
    from vpsbridge.jobs import maintenance, periodic
    from vpsbridge.workflows import autodiscover

    del maintenance  # imported for its job_log_purge registration
    autodiscover()

    async def show(app: AppContext) -> None:
        statuses = await periodic.task_statuses(app)
        if json_:
            print_json(
                [
                    {
                        "name": s.name,
                        "interval_seconds": s.interval,
                        "enabled": s.interval > 0,
                        "last_run_at": s.last_run_at,
                        "next_run_at": s.next_run_at,
                        "last_result": s.last_result,
                    }
                    for s in statuses
                ]
            )
            return
        table = Table("task", "interval", "last run", "next run", "last result")
        for s in statuses:
            interval = f"{s.interval:g}s" if s.interval > 0 else "disabled"
            result = (
                f"processed={s.last_result.get('processed')} errors={s.last_result.get('errors')}"
                if s.last_result
                else "-"
            )
            table.add_row(s.name, interval, _fmt_time(s.last_run_at), _fmt_time(s.next_run_at), result)
        console.print(table)

    async def run(app: AppContext) -> int:
        names = sorted(periodic.registered_tasks())
        if task is not None:
            if task not in names:
                err_console.print(f"unknown task {task!r}; known: {', '.join(names)}")
                return 2
            names = [task]
        failed = 0
        use_bar = console.is_terminal and len(names) > 1
        progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(), console=console, disable=not use_bar,
        )  # fmt: skip

        def emit(line: LogLine) -> None:
            if use_bar:
                progress.console.print(line.format(), markup=False, highlight=False)
            else:
                _print_line(line)

        def say(text: str) -> None:
            if use_bar:
                progress.console.print(text, markup=False, highlight=False)
            else:
                sys.stdout.write(text + "\n")
                sys.stdout.flush()

        with progress:
            bar = progress.add_task("periodic tasks", total=len(names))
            for name in names:
                progress.update(bar, description=name)
                result = await periodic.run_task(app, name, force=force, log=emit)
                if result is None:
                    say(f"{name}: not due (or disabled); use --force to run it now")
                else:
                    say(
                        f"{name}: processed={result.processed} errors={result.errors} "
                        f"details={_compact(result.details)}"
                    )
                    failed += result.errors > 0
                progress.advance(bar)
        return 1 if failed else 0

    if list_:
        run_with_context(ctx, show)
        return
    code = run_with_context(ctx, run)
    if code:
        raise typer.Exit(code)


def _compact(details: dict[str, Any]) -> str:
    import json

    return json.dumps(details, sort_keys=True, default=str)


# --- jobs ... --------------------------------------------------------------------------------------
def _job_dict(job: Job) -> dict[str, Any]:
    from vpsbridge.jobs.queue import display_status

    return {
        "id": job.id,
        "kind": job.kind,
        "status": display_status(job),
        "step_index": job.step_index,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "resource_key": job.resource_key,
        "dedupe_key": job.dedupe_key,
        "run_at": job.run_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "lease_owner": job.lease_owner,
        "cancel_requested": job.cancel_requested,
        "last_error": job.last_error,
        "created_at": job.created_at,
    }


@jobs_app.command("list")
def list_cmd(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option(help="queued, running, succeeded, failed or cancelled (waiting jobs are running)."),
    ] = None,
    kind: Annotated[str | None, typer.Option(help="Workflow name, e.g. deploy.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List jobs, newest first."""
    from vpsbridge.jobs.queue import list_jobs

    async def run(app: AppContext) -> list[Job]:
        return await list_jobs(app, status=status, kind=kind, limit=limit)

    jobs = run_with_context(ctx, run)
    rows = [_job_dict(j) for j in jobs]
    if json_:
        print_json(rows)
        return
    table = Table("id", "kind", "status", "step", "attempts", "resource", "run at", "last error")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["kind"],
            r["status"],
            str(r["step_index"]),
            f"{r['attempts']}/{r['max_attempts']}",
            r["resource_key"] or "-",
            _fmt_time(r["run_at"]),
            (r["last_error"] or "")[:60],
        )
    console.print(table)


@jobs_app.command("show")
def show_cmd(
    ctx: typer.Context,
    job_id: Annotated[int, typer.Argument(help="Job id.")],
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one job: status, payload, state, result and its step history."""
    from sqlalchemy import select

    from vpsbridge.store.models import Job, JobStep

    async def run(app: AppContext) -> tuple[Job | None, list[JobStep]]:
        async with app.db.session() as session:
            job = await session.get(Job, job_id)
            steps = (
                await session.scalars(select(JobStep).where(JobStep.job_id == job_id).order_by(JobStep.id))
            ).all()
        return job, list(steps)

    job, steps = run_with_context(ctx, run)
    if job is None:
        err_console.print(f"job {job_id} does not exist")
        raise typer.Exit(1)
    data = _job_dict(job) | {"payload": job.payload, "state": job.state, "result": job.result}
    data["steps"] = [
        {
            "index": s.index,
            "name": s.name,
            "outcome": s.outcome,
            "detail": s.detail,
            "attempt": s.attempt,
            "worker": s.worker,
            "started_at": s.started_at,
            "finished_at": s.finished_at,
        }
        for s in steps
    ]
    if json_:
        print_json(data)
        return
    for key in (
        "id",
        "kind",
        "status",
        "step_index",
        "attempts",
        "max_attempts",
        "resource_key",
        "dedupe_key",
    ):
        console.print(f"[bold]{key}[/bold]: {data[key]}")
    for key in ("run_at", "started_at", "finished_at"):
        console.print(f"[bold]{key}[/bold]: {_fmt_time(data[key])}")
    if job.last_error:
        console.print(f"[bold]last_error[/bold]: {job.last_error}", markup=True, highlight=False)
    console.print(f"[bold]payload[/bold]: {_compact(job.payload)}", highlight=False)
    console.print(f"[bold]state[/bold]: {_compact(job.state)}", highlight=False)
    console.print(f"[bold]result[/bold]: {_compact(job.result or {})}", highlight=False)
    table = Table("#", "step", "outcome", "attempt", "worker", "finished", "detail")
    for s in steps:
        table.add_row(
            str(s.index),
            s.name,
            s.outcome,
            str(s.attempt),
            s.worker or "-",
            _fmt_time(s.finished_at),
            s.detail or "",
        )
    console.print(table)


@jobs_app.command("log")
def log_cmd(
    ctx: typer.Context,
    job_id: Annotated[int, typer.Argument(help="Job id.")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until the job finishes.")
    ] = False,
) -> None:
    """Print a job's timestamped log lines (oldest first)."""
    from vpsbridge.jobs.queue import FINISHED, get_job, job_log

    async def run(app: AppContext) -> int:
        if await get_job(app, job_id) is None:
            err_console.print(f"job {job_id} does not exist")
            return 1
        last: int | None = None
        while True:
            for line in await job_log(app, job_id, after_id=last):
                _print_line(line)
                last = line.id
            if not follow:
                return 0
            job = await get_job(app, job_id)
            if job is None or job.status in FINISHED:
                for line in await job_log(app, job_id, after_id=last):
                    _print_line(line)
                return 0
            await asyncio.sleep(app.settings.worker_poll_seconds)

    code = run_with_context(ctx, run)
    if code:
        raise typer.Exit(code)


@jobs_app.command("cancel")
def cancel_cmd(ctx: typer.Context, job_id: Annotated[int, typer.Argument(help="Job id.")]) -> None:
    """Cancel a job: a queued job at once, a running one at its next step boundary."""
    from vpsbridge.jobs.queue import JobError, cancel
    from vpsbridge.services.audit import Actor

    async def run(app: AppContext) -> str:
        return await cancel(app, job_id, Actor.cli())

    try:
        status = run_with_context(ctx, run)
    except JobError as exc:
        err_console.print(str(exc))
        raise typer.Exit(1) from None
    if status == "cancelled":
        console.print(f"job {job_id} cancelled")
    else:
        console.print(f"job {job_id} is running; it stops at its next step boundary")


@jobs_app.command("reset")
def reset_cmd(
    ctx: typer.Context,
    job_id: Annotated[int, typer.Argument(help="Job id.")],
    mode: Annotated[
        str,
        typer.Option(
            help="retry: queue again from the failed step; restart: from the first step; "
            "done: mark succeeded (fixed by hand)."
        ),
    ] = "retry",
) -> None:
    """Reset a failed or cancelled job (operator "reset status")."""
    from vpsbridge.jobs.queue import JobError, reset
    from vpsbridge.services.audit import Actor

    async def run(app: AppContext) -> str:
        return await reset(app, job_id, Actor.cli(), mode=mode)

    try:
        status = run_with_context(ctx, run)
    except JobError as exc:
        err_console.print(str(exc))
        raise typer.Exit(1) from None
    console.print(f"job {job_id} is now {status}")


def register(app: typer.Typer) -> None:
    app.command()(worker)
    app.command()(cron)
    app.add_typer(jobs_app, name="jobs")
