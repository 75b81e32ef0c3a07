"""The real `therapy-scheduler` console script, run in a subprocess against a database named by the
environment (docs/IMPORT.md)."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
import pytest

from tests.fixtures import U_ADMIN, clinic_document
from tests.support import therapist, uid
from therapy_scheduler.auth.tokens import mint_token

SCRIPT = str(Path(sys.executable).parent / "therapy-scheduler")


def _env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THERAPY_SCHEDULER_")}
    env["THERAPY_SCHEDULER_DATABASE_URL"] = database_url
    env["THERAPY_SCHEDULER_LOG_LEVEL"] = "WARNING"
    env["COLUMNS"] = "60"  # a narrow terminal must not wrap error lines
    return env


def run(database_url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own console script
        [SCRIPT, *args],
        env=_env(database_url),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def test_migrate_demo_data_token_and_bad_input(sqlite_url: str, tmp_path: Path) -> None:
    migrated = run(sqlite_url, tmp_path, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout == ""
    # The smallest clinic the options allow (one BCBA, one inactive RBT) loads too.
    demo = run(
        sqlite_url, tmp_path, "demo-data", "--therapists", "2", "--clients", "3", "--weeks", "1"
    )
    assert demo.returncode == 0, demo.stderr
    # the 3 drawn clients and the forecast demo's client (demo/clinic.py `_forecast_client`)
    assert "therapists: 2, clients: 4" in demo.stderr

    token = run(sqlite_url, tmp_path, "token", "--email", "ADMIN@demo.brightsteps.example")
    assert token.returncode == 0, token.stderr
    lines = token.stdout.splitlines()
    assert len(lines) == 1
    claims = jwt.decode(lines[0], options={"verify_signature": False})
    assert set(claims) == {"sub", "iat", "nbf", "exp"}
    assert claims["exp"] - claims["iat"] == 8 * 3600

    unknown = run(sqlite_url, tmp_path, "token", "--email", "nobody@example.com")
    assert unknown.returncode == 1
    assert unknown.stdout == ""
    assert unknown.stderr == "error: no user with e-mail nobody@example.com\n"

    path = tmp_path / "clinic.json"
    path.write_bytes(orjson.dumps(clinic_document()))
    assert run(sqlite_url, tmp_path, "import", str(path)).returncode == 0
    inactive = run(sqlite_url, tmp_path, "token", "--email", "former@alpha.example")
    assert inactive.returncode == 1
    assert inactive.stderr == "error: user former@alpha.example is inactive\n"

    not_json = tmp_path / "broken.json"
    not_json.write_text("{")
    r = run(sqlite_url, tmp_path, "import", str(not_json))
    assert r.returncode == 1
    assert r.stderr.startswith(f"error: {not_json} is not valid JSON")
    assert len(r.stderr.splitlines()) == 1


def test_import_ok_and_failing(database_url: str, tmp_path: Path) -> None:
    """On both databases: counts per kind on success; on failure exit 1, one line naming the JSON
    path, and nothing imported."""
    good = tmp_path / "clinic.json"
    good.write_bytes(orjson.dumps(clinic_document()))
    r = run(database_url, tmp_path, "import", str(good))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "organizations: 2",
        "locations: 4",
        "therapists: 5",
        "clients: 5",
        "users: 6",
        "authorizations: 3",
        "sessions: 10",
    ]

    doc: dict[str, Any] = {
        "therapists": [therapist(uid(0xA2E0 + i), f"New {i}") for i in range(4)],
    }
    doc["therapists"][3]["time_zone"] = "Mars/Base"
    bad = tmp_path / "bad.json"
    bad.write_bytes(orjson.dumps(doc))
    failed = run(database_url, tmp_path, "import", str(bad))
    assert failed.returncode == 1
    assert failed.stdout == ""
    assert failed.stderr.splitlines()[-1] == (
        'error: therapists[3].time_zone: unknown time zone "Mars/Base"'
    )

    # A failure found inside the transaction (after the therapists were written) rolls back too.
    doc["therapists"][3]["time_zone"] = "America/New_York"
    doc["sessions"] = [
        {
            "id": uid(0xE0),
            "therapist_id": uid(0xA2E0),
            "client_id": uid(0xA301),
            "start_time": "2027-03-08T14:30:00Z",
            "end_time": "2027-03-08T15:00:00Z",
        }
    ]
    bad.write_bytes(orjson.dumps(doc))
    failed = run(database_url, tmp_path, "import", str(bad))
    assert failed.returncode == 1
    assert failed.stderr.splitlines()[-1] == (
        f"error: sessions[0]: overlaps existing session {uid(0xA601)} of the same client"
    )
    names = _served_therapists(database_url)
    assert names == ["Arlo Archived", "Ines Inactive", "Tara Quinn", "Theo Ramos"]


def _served_therapists(database_url: str) -> list[str]:
    import asyncio

    from tests.conftest import make_settings
    from therapy_scheduler.app import close_app, create_app

    async def fetch() -> list[str]:
        settings = make_settings(database_url)
        token = mint_token(settings, uuid.UUID(U_ADMIN))
        app = create_app(settings)
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                r = await client.get(
                    "/get-dropdown-data",
                    params={"types": "therapists", "include_inactive": "1"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                return [t["full_name"] for t in r.json()["data"]["therapists"]]
        finally:
            await close_app(app)

    return asyncio.run(fetch())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_serve_on_an_empty_database_prints_tokens(sqlite_url: str, tmp_path: Path) -> None:
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [SCRIPT, "serve", "--port", str(port)],
        env=_env(sqlite_url),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        output: list[str] = []
        deadline = time.monotonic() + 90
        while not any(line.startswith("Try: curl") for line in output):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no tokens printed: {output}"
            try:
                output.append(lines.get(timeout=remaining))
            except queue.Empty:
                pytest.fail(f"no tokens printed: {output}")
        tokens = {
            role: output[i + 1].strip()
            for i, line in enumerate(output)
            for role in ("admin", "scheduler", "therapist")
            if line.split()[:1] == [role]
        }
        assert set(tokens) == {"admin", "scheduler", "therapist"}
        base = f"http://127.0.0.1:{port}"
        health = None
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"{base}/healthz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert health is not None
        assert health.status_code == 200
        assert health.json() == {"success": True, "status": "ok"}
        for role, token in tokens.items():
            r = httpx.get(
                f"{base}/get-dropdown-data",
                params={"types": "therapists"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            assert r.status_code == 200, (role, r.text)
            expected = 1 if role == "therapist" else 24  # the demo's last therapist is inactive
            assert len(r.json()["data"]["therapists"]) == expected
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
