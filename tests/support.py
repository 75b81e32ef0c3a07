"""Helpers shared by the HTTP tests: seeding more records through the real import path, comparing
error bodies, and API server processes for the tests that need several of them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

import httpx

from tests.fixtures import ORG_A
from therapy_scheduler.importing.service import import_document, parse_document
from therapy_scheduler.infra.db import Database


def uid(n: int) -> str:
    return str(uuid.UUID(int=n))


async def import_more(db: Database, doc: dict[str, Any]) -> dict[str, int]:
    """Load more records into the clinic (one transaction), as `therapy-scheduler import` would."""
    parsed = parse_document(doc)
    async with db.write() as conn:
        return await import_document(conn, parsed)


def session(
    sid: str,
    therapist: str,
    client: str,
    start: str,
    end: str,
    status: str = "scheduled",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": sid,
        "therapist_id": therapist,
        "client_id": client,
        "start_time": start,
        "end_time": end,
        "status": status,
        **extra,
    }


def therapist(tid: str, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": tid,
        "organization_id": ORG_A,
        "full_name": name,
        "time_zone": "America/New_York",
        **extra,
    }


def client_record(cid: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"id": cid, "organization_id": ORG_A, "full_name": name, **extra}


def without_request_id(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert body["request_id"] == response.headers["x-request-id"]
    return {k: v for k, v in body.items() if k != "request_id"}


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"success", "error", "code", "request_id", "details"}
    assert body["success"] is False
    assert body["code"] == code, body
    assert body["error"]
    return body


def session_ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [s["id"] for s in response.json()["data"]["sessions"]]


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
def api_processes(
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
