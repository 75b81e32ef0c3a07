"""Statements per request with a read replica (docs/DEPLOYMENT.md, "Read replicas"), counted by
PostgreSQL itself: a primary and a streaming replica of their own (tests/scaleout/servers.py) with
pg_stat_statements, the service in process (httpx + ASGI), and per request kind the statements the
primary and the replica ran (BEGIN and COMMIT included). After a warm-up every statement of the service
is a cached prepared statement, so a statement is one round trip. Counts, not times: other work on
the machine does not move them.

    .venv/bin/python -m bench.replica_statements                        # this code
    PYTHONPATH=/path/to/old/src .venv/bin/python -m bench.replica_statements   # another version

Needs the PostgreSQL server binaries and PgBouncer that tests/scaleout needs (run as root or as a user
that may start them).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
from tests.booking.conftest import redated_document
from tests.conftest import make_settings
from tests.fixtures import T1, seed_clinic
from tests.scaleout import servers

from therapy_scheduler.app import create_app
from therapy_scheduler.importing.service import import_document, parse_document
from therapy_scheduler.migrations import upgrade

_CALLS = (
    "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements "
    "WHERE query NOT LIKE '%pg_stat_statements%' AND query NOT LIKE '%pg_last_wal_replay_lsn() >=%'"
)


async def _fetch(url: str, statement: str) -> Any:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return await conn.fetchval(statement)
    finally:
        await conn.close()


async def _caught_up(scaleout: servers.ScaleOut) -> None:
    target = await _fetch(scaleout.primary_url, "SELECT pg_current_wal_lsn()::text")
    for _ in range(1000):
        if await _fetch(
            scaleout.replica_url, f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"
        ):
            return
        await asyncio.sleep(0.01)
    raise RuntimeError("the replica did not catch up")


async def _measure(
    scaleout: servers.ScaleOut,
    request: Callable[[int], Awaitable[None]],
    count: int,
    flush: Callable[[], Awaitable[None]],
) -> tuple[float, float]:
    """Statements per request on the primary and on the replica, over `count` requests."""
    await flush()
    for url in (scaleout.primary_url, scaleout.replica_url):
        await _fetch(url, "SELECT pg_stat_statements_reset()")
    for i in range(count):
        await request(i)
    primary = await _fetch(scaleout.primary_url, _CALLS)
    replica = await _fetch(scaleout.replica_url, _CALLS)
    return primary / count, replica / count


async def run(count: int) -> None:
    servers.PRIMARY_CONF += "shared_preload_libraries = 'pg_stat_statements'\n"
    scaleout = servers.start()
    try:
        upgrade(scaleout.plain(scaleout.primary_url))
        await _fetch(scaleout.primary_url, "CREATE EXTENSION pg_stat_statements")
        settings = make_settings(scaleout.primary_url, read_database_url=scaleout.replica_url)
        app = create_app(settings)
        db = app.state.db
        # The buffered read audit (infra/audit_writer.py) is written by a timer, whenever it fires:
        # written before each count instead, so that it lands in none.
        app.state.audit_writer._flush_seconds = 3600
        clinic = await seed_clinic(db, settings)
        async with db.write() as conn:
            await import_document(conn, parse_document(redated_document()))
        await _caught_up(scaleout)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:

            async def write(i: int) -> None:
                r = await client.patch(
                    f"/admin/therapists/{T1}",
                    json={"full_name": f"Tara Quinn {i}"},
                    headers=clinic.headers("admin"),
                )
                assert r.status_code == 200, r.text

            def read(who: str) -> Callable[[int], Awaitable[None]]:
                async def one(_: int) -> None:
                    r = await client.get("/get-sessions-optimized", headers=clinic.headers(who))
                    assert r.status_code == 200, r.text

                return one

            kinds = {
                "write (admin changes a therapist)": write,
                "read by the writer, replica caught up": read("admin"),
                "read by a user without writes": read("scheduler"),
            }
            for request in kinds.values():  # warm-up: prepared statements, pools
                for i in range(5):
                    await request(i)
            await _caught_up(scaleout)
            print(f"{'request':45} {'primary':>8} {'replica':>8}   (statements per request)")
            for name, request in kinds.items():
                primary, replica = await _measure(
                    scaleout, request, count, app.state.audit_writer.flush
                )
                print(f"{name:45} {primary:8.2f} {replica:8.2f}")
                await _caught_up(scaleout)
            # The writer's reads while the replica has not replayed their write: on the primary.
            await _fetch(scaleout.replica_url, "SELECT pg_wal_replay_pause()")
            await write(0)
            name = "read by the writer, replica behind them"
            primary, replica = await _measure(
                scaleout, read("admin"), count, app.state.audit_writer.flush
            )
            print(f"{name:45} {primary:8.2f} {replica:8.2f}")
            await _fetch(scaleout.replica_url, "SELECT pg_wal_replay_resume()")
        await app.state.cache.close()
        await db.dispose()
    finally:
        scaleout.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50)
    asyncio.run(run(parser.parse_args().count))


if __name__ == "__main__":
    main()
