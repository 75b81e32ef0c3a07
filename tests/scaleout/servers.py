"""Real scale-out servers for the tests (docs/DEPLOYMENT.md, "Read replicas" and "PgBouncer"): a small
PostgreSQL primary of their own, a streaming hot-standby replica made from it with `pg_basebackup`,
and PgBouncer in transaction pooling mode in front of the primary. Each on a free port, in one
temporary directory, stopped and removed at the end of the test session (and at interpreter exit,
should the session die first). Nothing is shared with the 5432 server the other tests use.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PG_BIN = Path(os.environ.get("THERAPY_SCHEDULER_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
PGBOUNCER = Path(os.environ.get("THERAPY_SCHEDULER_TEST_PGBOUNCER", "/usr/sbin/pgbouncer"))
DATABASE = "scaleout"
SERVER_USER = "postgres"  # initdb and postgres refuse to run as root; so does PgBouncer


def missing() -> str | None:
    """Why the servers cannot be started here (None when they can)."""
    for binary in ("initdb", "pg_ctl", "pg_basebackup", "postgres"):
        if not (PG_BIN / binary).exists():
            return f"{PG_BIN / binary} not found"
    if not PGBOUNCER.exists():
        return f"{PGBOUNCER} not found"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user() -> dict[str, Any]:
    return {"user": SERVER_USER, "group": SERVER_USER} if os.geteuid() == 0 else {}


def _run(*args: str | Path) -> None:
    subprocess.run(  # noqa: S603 - fixed binaries, our own arguments
        [str(a) for a in args],
        check=True,
        capture_output=True,
        cwd="/",
        **_as_server_user(),
    )


PRIMARY_CONF = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{sockets}'
wal_level = replica
max_wal_senders = 4
hot_standby = on
max_connections = 100
shared_buffers = 16MB
fsync = off
full_page_writes = off
logging_collector = off
"""

# PgBouncer as docs/DEPLOYMENT.md configures it: transaction pooling, no ignore_startup_parameters
# (the service sends none that PgBouncer refuses when THERAPY_SCHEDULER_DB_PGBOUNCER=true).
PGBOUNCER_INI = """
[databases]
{database} = host=127.0.0.1 port={primary} dbname={database}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/userlist.txt
pool_mode = transaction
default_pool_size = 8
max_client_conn = 500
logfile = {directory}/pgbouncer.log
pidfile =
"""


@dataclass
class ScaleOut:
    """The running servers and their URLs (asyncpg driver URLs, user postgres, trust auth)."""

    directory: Path
    primary_port: int
    replica_port: int
    pgbouncer_port: int
    _pgbouncer: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def url(self, port: int, database: str = DATABASE) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{port}/{database}"

    @property
    def primary_url(self) -> str:
        return self.url(self.primary_port)

    @property
    def replica_url(self) -> str:
        return self.url(self.replica_port)

    @property
    def pgbouncer_url(self) -> str:
        return self.url(self.pgbouncer_port)

    def plain(self, url: str) -> str:
        """The URL for asyncpg.connect()."""
        return url.replace("postgresql+asyncpg://", "postgresql://")

    def stop_replica(self) -> None:
        _run(PG_BIN / "pg_ctl", "-D", self.directory / "replica", "-m", "fast", "-w", "stop")

    def start_replica(self) -> None:
        _run(
            PG_BIN / "pg_ctl",
            "-D",
            self.directory / "replica",
            "-l",
            self.directory / "replica.log",
            "-w",
            "start",
        )

    def stop(self) -> None:
        if self._pgbouncer is not None:
            self._pgbouncer.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._pgbouncer.wait(10)
            if self._pgbouncer.poll() is None:
                self._pgbouncer.kill()
            self._pgbouncer = None
        for name in ("replica", "primary"):
            data = self.directory / name
            if (data / "postmaster.pid").exists():
                with contextlib.suppress(subprocess.CalledProcessError):
                    _run(PG_BIN / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)


def start() -> ScaleOut:
    """initdb a primary, pg_basebackup a replica from it, start both and PgBouncer (about 2 s)."""
    directory = Path(tempfile.mkdtemp(prefix="ts-scaleout-"))
    if os.geteuid() == 0:
        shutil.chown(directory, SERVER_USER, SERVER_USER)
    servers = ScaleOut(directory, free_port(), free_port(), free_port())
    atexit.register(servers.stop)
    try:
        _start(servers)
    except BaseException:
        servers.stop()
        raise
    return servers


def _start(servers: ScaleOut) -> None:
    directory = servers.directory
    primary, replica = directory / "primary", directory / "replica"
    # initdb's default pg_hba.conf trusts local and 127.0.0.1 connections, replication included.
    _run(
        PG_BIN / "initdb", "-D", primary, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"
    )
    with (primary / "postgresql.conf").open("a") as conf:
        conf.write(PRIMARY_CONF.format(port=servers.primary_port, sockets=directory))
    _run(PG_BIN / "pg_ctl", "-D", primary, "-l", directory / "primary.log", "-w", "start")
    _run(
        PG_BIN / "psql",
        "-h",
        "127.0.0.1",
        "-p",
        str(servers.primary_port),
        "-U",
        "postgres",
        "-d",
        "postgres",
        "-c",
        f"CREATE DATABASE {DATABASE}",
        "-c",
        # Through PgBouncer the service cannot send statement_timeout: it is set on the role
        # (docs/DEPLOYMENT.md, "PgBouncer").
        "ALTER ROLE postgres SET statement_timeout = '10s'",
    )
    # -R writes standby.signal and primary_conninfo: the copy starts as a streaming hot standby.
    _run(
        PG_BIN / "pg_basebackup",
        "-h",
        "127.0.0.1",
        "-p",
        str(servers.primary_port),
        "-U",
        "postgres",
        "-D",
        replica,
        "-R",
        "-X",
        "stream",
        "-c",
        "fast",
        "--no-sync",
    )
    with (replica / "postgresql.conf").open("a") as conf:
        conf.write(f"port = {servers.replica_port}\n")
    servers.start_replica()
    (directory / "userlist.txt").write_text('"postgres" ""\n')
    ini = directory / "pgbouncer.ini"
    ini.write_text(
        PGBOUNCER_INI.format(
            database=DATABASE,
            primary=servers.primary_port,
            port=servers.pgbouncer_port,
            directory=directory,
        )
    )
    if os.geteuid() == 0:
        for path in (directory / "userlist.txt", ini):
            shutil.chown(path, SERVER_USER, SERVER_USER)
    servers._pgbouncer = subprocess.Popen(  # noqa: S603 - a fixed binary and our config
        [str(PGBOUNCER), str(ini)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd="/",
        **_as_server_user(),
    )
    _wait_for_port(servers.pgbouncer_port, servers._pgbouncer)


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")
