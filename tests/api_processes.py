"""Real API processes for tests: `therapy_scheduler.app:create_app` under uvicorn, each an OS process
with its own engines, pools and periodic jobs. One launcher for every test that needs them (the
booking races, the split-process race, the outage, the shared rate limits, two dispatchers or
waitlist matchers): all processes start at once and the test goes on when each answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import ExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import IO

import httpx

from tests.conftest import PGBOUNCER_URLS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# What every test server process gets unless its env says otherwise.
SERVER_ENV = {
    "THERAPY_SCHEDULER_ENVIRONMENT": "test",
    "THERAPY_SCHEDULER_RATE_LIMIT_USER": "off",
    "THERAPY_SCHEDULER_RATE_LIMIT_IP": "off",
    "THERAPY_SCHEDULER_LOG_LEVEL": "WARNING",
}


@contextmanager
def server_processes(
    envs: Sequence[Mapping[str, str]],
    *,
    ready_path: str = "/healthz",
    log_dir: Path | None = None,
    start_seconds: float = 60,
) -> Iterator[list[str]]:
    """One uvicorn process of the app per entry of `envs` (THERAPY_SCHEDULER_* variables over
    SERVER_ENV; none inherited from this process), all started at once and each answering
    `ready_path` with 200 before the base URLs are yielded; stopped on exit. Their output goes to
    `log_dir`/api-<n>.log when given (else a temporary file), and its tail into the failure when a
    process exits or does not get ready in time."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("THERAPY_SCHEDULER_")}
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[IO[bytes]] = []
    urls: list[str] = []
    with ExitStack() as cleanup:
        cleanup.callback(_stop, processes)
        for n, env in enumerate(envs):
            log = cleanup.enter_context(
                (log_dir / f"api-{n}.log").open("w+b") if log_dir else tempfile.TemporaryFile()  # noqa: SIM115 - closed by `cleanup`
            )
            port = free_port()
            processes.append(
                subprocess.Popen(  # noqa: S603 - our own interpreter and the app's factory
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
                        "--no-access-log",
                    ],
                    env={**inherited, **SERVER_ENV, **env},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            logs.append(log)
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + start_seconds
        for url, process, output in zip(urls, processes, logs, strict=True):
            while not _ready(url + ready_path):
                problem = (
                    f"exited with {process.returncode}"
                    if process.poll() is not None
                    else f"not ready within {start_seconds:g} s"
                    if time.monotonic() > deadline
                    else None
                )
                if problem:
                    output.seek(0)
                    tail = output.read().decode(errors="replace")[-2000:]
                    raise RuntimeError(f"API server at {url} {problem}: {tail}")
                time.sleep(0.1)
        yield urls


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@asynccontextmanager
async def api_processes(
    database_url: str, count: int, env: dict[str, str] | None = None
) -> AsyncIterator[list[str]]:
    """`count` API processes on `database_url` (extra THERAPY_SCHEDULER_* settings in `env`),
    their base URLs yielded once each answers /healthz."""
    settings = {
        "THERAPY_SCHEDULER_DATABASE_URL": database_url,
        "THERAPY_SCHEDULER_DB_POOL_SIZE": "5",
        "THERAPY_SCHEDULER_DB_PGBOUNCER": str(database_url in PGBOUNCER_URLS).lower(),
        **(env or {}),
    }
    with server_processes([settings] * count) as urls:
        yield urls


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
