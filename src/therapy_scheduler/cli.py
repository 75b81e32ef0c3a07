"""The `therapy-scheduler` command: serve, migrate, demo-data, token, import."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.text import Text
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from therapy_scheduler.auth.tokens import mint_token
from therapy_scheduler.config import Settings, get_settings
from therapy_scheduler.demo.clinic import DEMO_ORG_ID, DemoUsers, build_demo
from therapy_scheduler.errors import AppError
from therapy_scheduler.importing.csv_files import SourceError, load_csv
from therapy_scheduler.importing.problems import ImportFailed, Problem, SourceMap
from therapy_scheduler.importing.service import ImportReport, run_import
from therapy_scheduler.infra.db import Database
from therapy_scheduler.kit.time import utcnow
from therapy_scheduler.migrations import upgrade
from therapy_scheduler.models import Organization, User

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")


def _fail(message: str) -> None:
    # One line whatever the terminal width, and the message is data, never rich markup.
    console.print(Text.assemble(("error:", "red"), " ", message), soft_wrap=True, highlight=False)
    raise typer.Exit(1)


def _settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        _fail(f"configuration: {first.get('msg', 'invalid')}".replace("Value error, ", ""))
        raise  # unreachable


def _run(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    async def main() -> T:
        db = Database.from_settings(settings)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


@app.command()
def migrate() -> None:
    """Apply database migrations to the configured database."""
    settings = _settings()
    upgrade(settings.database_url)
    console.print("migrations applied")


def _load(
    settings: Settings,
    document: Any,
    label: str,
    *,
    dry_run: bool = False,
    source_problems: list[Problem] | None = None,
) -> ImportReport:
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
    ) as bar:
        tasks: dict[str, Any] = {}

        def step(kind: str, done: int, total: int) -> None:
            if kind not in tasks:
                tasks[kind] = bar.add_task(f"{label} {kind}", total=total)
            bar.update(tasks[kind], completed=done)

        async def work(db: Database) -> ImportReport:
            return await run_import(
                db, document, dry_run=dry_run, progress=step, source_problems=source_problems
            )

        return _run(settings, work)


@app.command("demo-data")
def demo_data(
    therapists: Annotated[int, typer.Option(min=2, max=5000)] = 25,
    clients: Annotated[int, typer.Option(min=1, max=100_000)] = 120,
    weeks: Annotated[int, typer.Option(min=1, max=520)] = 8,
    seed: Annotated[int, typer.Option()] = 7,
) -> None:
    """Load the demo clinic "Bright Steps ABA" (idempotent for the same seed)."""
    settings = _settings()
    upgrade(settings.database_url)
    today = utcnow().date()
    document = build_demo(
        therapists=therapists, clients=clients, weeks=weeks, seed=seed, today=today
    )
    counts = _load(settings, document, "demo").counts
    console.print(", ".join(f"{k}: {v}" for k, v in counts.items()))
    _demo_activity(settings, seed)


@app.command()
def token(
    email: Annotated[str, typer.Option(help="E-mail of an existing user")],
    expires_in: Annotated[int, typer.Option(min=60, max=30 * 86400)] = 8 * 3600,
) -> None:
    """Print a signed token for an existing, active user (HS256 development mode)."""
    settings = _settings()

    async def find(db: Database) -> Any:
        async with db.read() as conn:
            return (
                await conn.execute(
                    select(User.id, User.is_active).where(User.email == email.strip().lower())
                )
            ).first()

    row = _run(settings, find)
    if row is None:
        _fail(f"no user with e-mail {email}")
    if not row.is_active:
        _fail(f"user {email} is inactive")
    print(mint_token(settings, row.id, expires_in=expires_in))


@app.command("import")
def import_file(
    path: Annotated[
        Path, typer.Argument(help="a JSON document, a CSV file, or a directory of <kind>.csv files")
    ],
    kind: Annotated[
        str | None,
        typer.Option(help="what a CSV file holds (default: its name, e.g. therapists.csv)"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="report every problem and change nothing")
    ] = False,
) -> None:
    """Import a clinic in one transaction (upsert by id) from JSON or CSV (see docs/ADMIN.md)."""
    settings = _settings()
    source: SourceMap | None = None
    problems: list[Problem] = []
    try:
        if path.is_dir() or path.suffix.lower() == ".csv":
            raw, source, problems = load_csv(path, kind)
        else:
            if kind is not None:
                _fail("--kind applies to CSV files only")
            raw = orjson.loads(path.read_bytes())
    except SourceError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror}")
    except orjson.JSONDecodeError as exc:
        _fail(f"{path} is not valid JSON: {exc}")
    upgrade(settings.database_url)
    try:
        report = _load(settings, raw, "import", dry_run=dry_run, source_problems=problems)
    except ImportFailed as exc:
        lines = exc.rendered(source)
        if len(lines) == 1:
            _fail(lines[0])  # one problem: the one-line reason names its path
        for line in lines:
            console.print(
                Text.assemble(("error:", "red"), " ", line), soft_wrap=True, highlight=False
            )
        count = len(exc.problems)
        _fail(f"{count} problem{'s' if count != 1 else ''}; nothing was imported")
    except AppError as exc:
        _fail(exc.message)
    except IntegrityError as exc:
        # A rule the checks above do not know of; the transaction was rolled back.
        _fail(f"the database refused the import ({type(exc.orig).__name__}); nothing was imported")
    for name, count in report.counts.items():
        print(f"{name}: {count}")
    if dry_run:
        console.print("dry run: no problems found; nothing was changed")


@app.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64)] = 1,
) -> None:
    """Migrate if needed and serve. An empty embedded database gets the demo clinic and printed tokens."""
    import uvicorn

    settings = _settings()
    upgrade(settings.database_url)
    if settings.is_sqlite and _is_empty(settings):
        console.print("Empty database: loading the demo clinic…")
        counts = _load(settings, build_demo(today=utcnow().date()), "demo").counts
        console.print(", ".join(f"{k}: {v}" for k, v in counts.items()))
        _demo_activity(settings, 7)
        _print_tokens(settings, f"http://{host}:{port}")
    base = f"http://{host}:{port}"
    console.print(f"Serving on {base}  (schedule board: {base}/board, API docs: {base}/docs)")
    uvicorn.run(
        "therapy_scheduler.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


def _demo_activity(settings: Settings, seed: int) -> None:
    """Lifecycle history through the real services: series, a reschedule, late cancellations."""
    from therapy_scheduler.demo.activity import add_activity

    async def work(db: Database) -> dict[str, int]:
        return await add_activity(
            db, organization_id=DEMO_ORG_ID, scheduler_email=DemoUsers.scheduler, seed=seed
        )

    added = _run(settings, work)
    console.print(", ".join(f"{k}: {v}" for k, v in added.items()))


def _is_empty(settings: Settings) -> bool:
    async def count(db: Database) -> int:
        async with db.read() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(Organization))).scalar_one()
            )

    return _run(settings, count) == 0


def _print_tokens(settings: Settings, base_url: str) -> None:
    async def users(db: Database) -> list[Any]:
        async with db.read() as conn:
            admin = (
                await conn.execute(select(User.id, User.email).where(User.email == DemoUsers.admin))
            ).one()
            scheduler = (
                await conn.execute(
                    select(User.id, User.email).where(User.email == DemoUsers.scheduler)
                )
            ).one()
            therapist = (
                await conn.execute(
                    select(User.id, User.email)
                    .where(User.role == "therapist", User.is_active.is_(True))
                    .order_by(User.email)
                    .limit(1)
                )
            ).one()
            return [("admin", admin), ("scheduler", scheduler), ("therapist", therapist)]

    print("\nDemo clinic ready. Tokens (valid 8 hours):", flush=True)
    for role, row in _run(settings, users):
        print(f"  {role:<10} {row.email}\n  {mint_token(settings, row.id, expires_in=8 * 3600)}\n")
    print(
        f'Try: curl -H "Authorization: Bearer <token>" '
        f'"{base_url}/get-dropdown-data?types=therapists"\n',
        flush=True,
    )


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
