"""The `therapy-scheduler import` command with CSV and JSON sources, and its --dry-run."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from tests.conftest import make_settings
from therapy_scheduler.cli import app
from therapy_scheduler.config import get_settings
from therapy_scheduler.infra.db import Database

ORG = "00000000-0000-0000-0000-000000000001"
T_ANN, T_BOB = "00000000-0000-0000-0000-000000000101", "00000000-0000-0000-0000-000000000102"
C_DEE = "00000000-0000-0000-0000-000000000201"

ORGANIZATIONS = f"""id,name,time_zone,settings
{ORG},CSV Clinic,America/New_York,"{{""buffer_minutes"": 10}}"
"""
THERAPISTS = (
    "id,organization_id,full_name,email,credential,time_zone,availability,time_off,specialties\n"
    f"{T_ANN},{ORG},Ann Avery,ann@csv.example,BCBA,America/New_York,"
    "monday 09:00-12:00; monday 13:00-17:00,2027-03-14T01:00/2027-03-14T05:00,"
    "autism; early intervention\n"
    f"{T_BOB},{ORG},Bob Burns,bob@csv.example,RBT,America/Chicago,,"
    "extra 2027-03-13T09:00/2027-03-13T12:00,\n"
)
CLIENTS = f"""id,organization_id,full_name,therapist_ids,date_of_birth
{C_DEE},{ORG},Dee Dunn,{T_ANN}; {T_BOB},2019-01-01
"""


def _invoke(url: str, *args: str) -> Any:
    get_settings.cache_clear()  # the command reads its configuration once per process
    return CliRunner().invoke(app, ["import", *args], env={"THERAPY_SCHEDULER_DATABASE_URL": url})


def _query(url: str, sql: str) -> list[tuple[Any, ...]]:
    async def run() -> list[tuple[Any, ...]]:
        db = Database.from_settings(make_settings(url))
        try:
            async with db.read() as conn:
                return [tuple(r) for r in await conn.execute(text(sql))]
        finally:
            await db.dispose()

    return asyncio.run(run())


def _lines(output: str) -> list[str]:
    """Output lines without the blank ones the progress display leaves."""
    return [line for line in output.splitlines() if line.strip()]


def _write(directory: Path, **files: str) -> Path:
    directory.mkdir(exist_ok=True)
    for name, content in files.items():
        (directory / f"{name}.csv").write_text(content)
    return directory


def test_csv_directory_is_imported_in_one_go(database_url: str, tmp_path: Path) -> None:
    source = _write(
        tmp_path / "clinic", organizations=ORGANIZATIONS, therapists=THERAPISTS, clients=CLIENTS
    )
    result = _invoke(database_url, str(source))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "organizations: 1",
        "locations: 0",
        "therapists: 2",
        "clients: 1",
        "users: 0",
        "authorizations: 0",
        "sessions: 0",
    ]
    assert _query(
        database_url, "SELECT full_name, time_zone FROM therapists ORDER BY full_name"
    ) == [
        ("Ann Avery", "America/New_York"),
        ("Bob Burns", "America/Chicago"),
    ]
    assert _query(database_url, "SELECT count(*) FROM availability_windows") == [(2,)]
    assert _query(database_url, "SELECT count(*) FROM caseloads") == [(2,)]
    kinds = _query(database_url, "SELECT kind FROM time_off ORDER BY kind")
    assert kinds == [("extra",), ("time_off",)]
    # Importing the same files again changes nothing (upsert by id).
    again = _invoke(database_url, str(source))
    assert again.exit_code == 0, again.stderr
    assert _query(database_url, "SELECT count(*) FROM therapists") == [(2,)]
    assert _query(database_url, "SELECT count(*) FROM time_off") == [(2,)]


def test_dry_run_reports_every_problem_and_changes_nothing(
    database_url: str, tmp_path: Path
) -> None:
    therapists = THERAPISTS + (
        f"00000000-0000-0000-0000-000000000103,{ORG},Cy Cole,not-an-email,RBT,Mars/Base,"
        "funday 09:00-10:00,,\n"
        f"00000000-0000-0000-0000-000000000104,{ORG},Di Dole,di@csv.example,RBT,America/New_York,,"
        "2027-03-14T02:30/2027-03-14T04:00,\n"
    )
    clients = (
        CLIENTS
        + f"00000000-0000-0000-0000-000000000202,{ORG},Eve Eng,00000000-0000-0000-0000-000000000999,\n"
    )
    source = _write(
        tmp_path / "clinic",
        organizations=ORGANIZATIONS,
        therapists=therapists.replace("specialties", "specialties,colour", 1),
        clients=clients,
        locations=f"id,organization_id,name,location_type\n{ORG[:-1]}9,{ORG},Nowhere,moon\n",
    )
    result = _invoke(database_url, str(source), "--dry-run")
    assert result.exit_code == 1, result.stdout
    assert _lines(result.stderr) == [
        "error: therapists.csv:1:colour: unknown column",
        "error: locations.csv:2:location_type: Input should be 'clinic', 'home', 'school', "
        "'telehealth' or 'community'",
        'error: therapists.csv:4:availability[0].weekday: unknown weekday "funday"',
        "error: therapists.csv:4:email: is not a valid e-mail address",
        'error: therapists.csv:4:time_zone: unknown time zone "Mars/Base"',
        "error: therapists.csv:5:time_off[0]: 2027-03-14T02:30:00 does not exist in "
        "America/New_York (daylight-saving gap)",
        "error: clients.csv:3:therapist_ids[0]: unknown therapist "
        "00000000-0000-0000-0000-000000000999",
        "error: 7 problems; nothing was imported",
    ]
    assert _query(database_url, "SELECT count(*) FROM organizations") == [(0,)]


def test_clean_dry_run_changes_nothing(database_url: str, tmp_path: Path) -> None:
    source = _write(tmp_path / "clinic", organizations=ORGANIZATIONS, therapists=THERAPISTS)
    result = _invoke(database_url, str(source), "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "therapists: 2" in result.stdout.splitlines()
    assert "dry run: no problems found; nothing was changed" in result.stderr
    assert _query(database_url, "SELECT count(*) FROM organizations") == [(0,)]


def test_single_csv_file_takes_its_kind_from_the_name_or_option(
    database_url: str, tmp_path: Path
) -> None:
    _write(tmp_path, organizations=ORGANIZATIONS)
    assert _invoke(database_url, str(tmp_path / "organizations.csv")).exit_code == 0
    staff = tmp_path / "staff.csv"
    staff.write_text(THERAPISTS)
    unnamed = _invoke(database_url, str(staff))
    assert unnamed.exit_code == 1
    assert "staff.csv: the file name (or --kind) must be one of organizations, locations" in (
        unnamed.stderr
    )
    named = _invoke(database_url, str(staff), "--kind", "therapists")
    assert named.exit_code == 0, named.stderr
    assert _query(database_url, "SELECT count(*) FROM therapists") == [(2,)]


def test_csv_cells_of_booleans_and_numbers_are_converted(database_url: str, tmp_path: Path) -> None:
    """The records take JSON types only; the CSV reader turns `is_active` and the units of `services`
    into a boolean and whole numbers, and names the cell that does not read as one."""
    loc_on, loc_off = ORG[:-1] + "3", ORG[:-1] + "4"
    auth = "00000000-0000-0000-0000-000000000401"
    locations = (
        "id,organization_id,name,location_type,is_active\n"
        f"{loc_on},{ORG},Main,clinic,TRUE\n{loc_off},{ORG},Annex,clinic,0\n"
    )
    authorizations = (
        "id,client_id,number,payer,start_date,end_date,status,services\n"
        f"{auth},{C_DEE},A-1,Keystone,2027-01-01,2027-06-30,approved,97153:400; 97155:24:30\n"
    )
    source = _write(
        tmp_path / "clinic",
        organizations=ORGANIZATIONS,
        therapists=THERAPISTS,
        clients=CLIENTS,
        locations=locations,
        authorizations=authorizations,
    )
    result = _invoke(database_url, str(source))
    assert result.exit_code == 0, result.stderr
    assert _query(database_url, "SELECT name, is_active FROM locations ORDER BY name") == [
        ("Annex", False),
        ("Main", True),
    ]
    assert _query(
        database_url,
        "SELECT service_code, approved_units, unit_minutes FROM authorization_services "
        "ORDER BY service_code",
    ) == [("97153", 400, 15), ("97155", 24, 30)]

    bad = _write(
        tmp_path / "bad",
        organizations=ORGANIZATIONS,
        clients=CLIENTS.replace(f"{T_ANN}; {T_BOB}", ""),
        locations=locations.replace("TRUE", "yes"),
        authorizations=authorizations.replace("97155:24:30", "97155:2.5"),
    )
    refused = _invoke(database_url, str(bad), "--dry-run")
    assert refused.exit_code == 1, refused.stdout
    assert _lines(refused.stderr) == [
        "error: locations.csv:2:is_active: must be true, false, 1 or 0",
        'error: authorizations.csv:2:services: "97155:2.5" is not '
        '"<code>:<approved_units>[:<unit_minutes>[:<weekly cap>u|h]]"',
        "error: 2 problems; nothing was imported",
    ]


def test_csv_weekly_caps(database_url: str, tmp_path: Path) -> None:
    """A service's fourth part is its weekly cap: `<n>u` units or `<n>h` hours (docs/IMPORT.md)."""
    auth = "00000000-0000-0000-0000-000000000401"
    authorizations = (
        "id,client_id,number,payer,start_date,end_date,status,services\n"
        f"{auth},{C_DEE},A-1,Keystone,2027-01-01,2027-06-30,approved,"
        "97153:400:15:7.5h; 97155:24:15:4u\n"
    )
    source = _write(
        tmp_path / "clinic",
        organizations=ORGANIZATIONS,
        therapists=THERAPISTS,
        clients=CLIENTS,
        authorizations=authorizations,
    )
    result = _invoke(database_url, str(source))
    assert result.exit_code == 0, result.stderr
    assert _query(
        database_url,
        "SELECT service_code, weekly_cap_units, weekly_cap_minutes FROM authorization_services "
        "ORDER BY service_code",
    ) == [("97153", None, 450), ("97155", 4, None)]

    for cap, message in [
        ("0h", "authorizations.csv:2:services[0].weekly_cap_hours: Input should be greater than 0"),
        (
            "-3u",
            "authorizations.csv:2:services[0].weekly_cap_units: Input should be greater than 0",
        ),
        ("8x", '"97153:400:15:8x" is not'),
    ]:
        bad = _write(
            tmp_path / f"bad{cap}",
            organizations=ORGANIZATIONS,
            therapists=THERAPISTS,
            clients=CLIENTS,
            authorizations=authorizations.replace("7.5h", cap),
        )
        refused = _invoke(database_url, str(bad), "--dry-run")
        assert refused.exit_code == 1, refused.stdout
        assert message in refused.stderr, refused.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "therapists"], "--kind applies to a single CSV file, not a directory"),
        ([], "unexpected file(s) notes.csv"),
    ],
)
def test_directory_problems(
    database_url: str, tmp_path: Path, args: list[str], message: str
) -> None:
    _write(tmp_path, organizations=ORGANIZATIONS, notes="a,b\n")
    if args:
        (tmp_path / "notes.csv").unlink()
    result = _invoke(database_url, str(tmp_path), *args)
    assert result.exit_code == 1
    assert message in result.stderr


def test_json_dry_run_names_json_paths(database_url: str, tmp_path: Path) -> None:
    document = {
        "organizations": [{"id": ORG, "name": "JSON Clinic", "time_zone": "America/New_York"}],
        "therapists": [
            {"id": T_ANN, "organization_id": ORG, "full_name": "Ann", "time_zone": "UTC"},
            {"id": T_BOB, "organization_id": ORG, "full_name": "Bob", "time_zone": "Mars/Base"},
        ],
        "clients": [{"id": C_DEE, "organization_id": ORG, "full_name": "Dee"}],
        "users": [
            {"id": T_ANN, "organization_id": ORG, "email": "a@x.example", "full_name": "A", "role": "admin"},
            {"id": T_BOB, "organization_id": ORG, "email": "A@x.example", "full_name": "B", "role": "admin"},
        ],
        "sessions": [
            {"id": "00000000-0000-0000-0000-000000000301", "therapist_id": T_ANN, "client_id": C_DEE,
             "start_time": "2027-03-08T14:00:00Z", "end_time": "2027-03-08T15:00:00Z"},
            {"id": "00000000-0000-0000-0000-000000000302", "therapist_id": T_ANN, "client_id": C_DEE,
             "start_time": "2027-03-08T14:30:00Z", "end_time": "2027-03-08T15:30:00Z"},
        ],
        "rooms": [],
    }  # fmt: skip
    path = tmp_path / "clinic.json"
    path.write_bytes(orjson.dumps(document))
    result = _invoke(database_url, str(path), "--dry-run")
    assert result.exit_code == 1
    assert _lines(result.stderr) == [
        "error: rooms: unknown key (expected one of organizations, locations, therapists, clients, "
        "users, authorizations, sessions)",
        'error: therapists[1].time_zone: unknown time zone "Mars/Base"',
        "error: users[1].email: duplicate email a@x.example (also users[0])",
        "error: sessions[0]: overlaps sessions[1] of the same therapist",
        "error: sessions[0]: overlaps sessions[1] of the same client",
        "error: 5 problems; nothing was imported",
    ]
    assert _query(database_url, "SELECT count(*) FROM organizations") == [(0,)]
