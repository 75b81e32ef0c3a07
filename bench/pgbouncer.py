"""A PgBouncer in transaction pooling mode in front of the benchmark database, for the
`booking_4proc_pgbouncer` scenario (docs/DEPLOYMENT.md, "PgBouncer"). Debian's /usr/sbin/pgbouncer,
started in a temporary directory on a free port and stopped afterwards."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PGBOUNCER = Path(os.environ.get("BENCH_PGBOUNCER", "/usr/sbin/pgbouncer"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def pgbouncer(url: str, pool_size: int = 20) -> Iterator[str]:
    """`url` (postgresql+asyncpg://user@host:port/db) as seen through a new PgBouncer."""
    if not PGBOUNCER.exists():
        raise SystemExit(f"{PGBOUNCER} not found: apt-get install -y pgbouncer")
    parts = urlsplit(url)
    user = parts.username or "postgres"
    port = _free_port()
    # Its own directory under the system temp dir, which the postgres user can reach.
    directory = Path(tempfile.mkdtemp(prefix="ts-bench-pgbouncer-"))
    (directory / "userlist.txt").write_text(f'"{user}" "{parts.password or ""}"\n')
    ini = directory / "pgbouncer.ini"
    ini.write_text(
        f"""[databases]
* = host={parts.hostname or "127.0.0.1"} port={parts.port or 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = {"plain" if parts.password else "trust"}
auth_file = {directory}/userlist.txt
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 1000
logfile = {directory}/pgbouncer.log
"""
    )
    as_user: dict[str, str] = {}
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        as_user = {"user": "postgres", "group": "postgres"}
        shutil.chown(directory, "postgres", "postgres")
        for path in directory.iterdir():
            shutil.chown(path, "postgres", "postgres")
    process = subprocess.Popen(
        [str(PGBOUNCER), str(ini)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd="/",
        **as_user,  # type: ignore[call-overload]
    )
    try:
        for _ in range(200):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None:
                raise SystemExit(f"pgbouncer exited: see {directory}/pgbouncer.log")
            time.sleep(0.05)
        netloc = parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{port}"
        yield urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(directory, ignore_errors=True)
