"""Real servers for the security tests: Redis checks and a throwaway PostgreSQL cluster that a test may
stop and start (never the shared one). The app's own processes come from tests/api_processes.py
`server_processes`."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from contextlib import suppress
from pathlib import Path

import pytest

from tests.api_processes import free_port

REDIS_URL = os.environ.get("THERAPY_SCHEDULER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_BIN = Path(os.environ.get("THERAPY_SCHEDULER_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def require_redis() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        if IN_CI:
            pytest.fail(f"Redis is required under CI=true but unavailable: {exc}")
        pytest.skip(f"Redis unavailable: {exc}")
    return REDIS_URL


class ThrowawayPostgres:
    """A private PostgreSQL cluster in a temporary directory, on a free port, owned by the test.

    Only this cluster is ever stopped; the shared server at 5432 is never touched."""

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            if IN_CI:
                pytest.fail(f"PostgreSQL binaries not found in {PG_BIN}")
            pytest.skip(f"PostgreSQL binaries not found in {PG_BIN}")
        self.root = Path(tempfile.mkdtemp(prefix="ts-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ]
        )

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, argv: list[str]) -> None:
        if self._as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=120)  # noqa: S603

    def start(self) -> None:
        self._run(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.root / "log"),
                "-o",
                f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off",
                "-w",
                "start",
            ]
        )

    def stop(self, mode: str = "fast") -> None:
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def destroy(self) -> None:
        with suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
