"""Real API processes for tests: `therapy_scheduler.app:create_app` under uvicorn, each an OS process
with its own engines, pools and periodic jobs, serving the test's database (as in
tests/booking/test_race.py)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from tests.conftest import PGBOUNCER_URLS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def api_processes(
    database_url: str, count: int, env: dict[str, str] | None = None
) -> AsyncIterator[list[str]]:
    """Starts `count` API processes on `database_url` (extra THERAPY_SCHEDULER_* settings in
    `env`), yields their base URLs once each answers /healthz, and stops them afterwards."""
    environment = {
        **os.environ,
        "THERAPY_SCHEDULER_DATABASE_URL": database_url,
        "THERAPY_SCHEDULER_ENVIRONMENT": "test",
        "THERAPY_SCHEDULER_RATE_LIMIT_USER": "off",
        "THERAPY_SCHEDULER_RATE_LIMIT_IP": "off",
        "THERAPY_SCHEDULER_DB_POOL_SIZE": "5",
        "THERAPY_SCHEDULER_LOG_LEVEL": "WARNING",
        "THERAPY_SCHEDULER_DB_PGBOUNCER": str(database_url in PGBOUNCER_URLS).lower(),
        **(env or {}),
    }
    processes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    for _ in range(count):
        port = free_port()
        processes.append(
            subprocess.Popen(  # noqa: S603, ASYNC220 - our own interpreter; starts in ms
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "therapy_scheduler.app:create_app",
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                ],
                env=environment,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient() as probe:
            for url, process in zip(urls, processes, strict=True):
                while True:
                    if process.poll() is not None:
                        err = process.stderr.read().decode() if process.stderr else ""
                        pytest.fail(f"server exited: {err[-2000:]}")
                    try:
                        if (await probe.get(f"{url}/healthz", timeout=1)).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        pytest.fail("server did not start within 60 s")
                    await asyncio.sleep(0.2)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def counter(url: str, name: str, **labels: str) -> float:
    """A counter's value on one process's /metrics (0 when it has no sample yet)."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{url}/metrics", timeout=10)).text
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    prefix = f"{name}{{{wanted}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.split()[-1])
    return 0.0
