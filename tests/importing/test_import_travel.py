"""Coordinates of locations and the travel settings in the import document, JSON and CSV
(docs/IMPORT.md), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fixtures import ORG_A, Clinic
from tests.importing.test_import_cli import ORG, ORGANIZATIONS, _invoke, _lines, _query, _write
from tests.support import import_more, uid
from therapy_scheduler.importing.service import ImportFailed, parse_document
from therapy_scheduler.infra.db import Database


def _location(**extra: Any) -> dict[str, Any]:
    return {
        "id": uid(0xA1E1),
        "organization_id": ORG_A,
        "name": "Lincoln Elementary",
        "location_type": "school",
        **extra,
    }


def _problem(doc: dict[str, Any]) -> str:
    with pytest.raises(ImportFailed) as caught:
        parse_document(doc)
    return caught.value.message


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"latitude": 91, "longitude": 0}, "locations[0].latitude: Input should be less than or "),
        ({"latitude": 0, "longitude": -180.5}, "locations[0].longitude: Input should be greater"),
        ({"latitude": 40.7}, "locations[0].longitude: longitude is missing: give latitude and"),
        ({"longitude": -73.9}, "locations[0].longitude: latitude is missing: give latitude and"),
        ({"latitude": "40.7", "longitude": 1}, "locations[0].latitude: must be a number or null"),
    ],
)
def test_bad_coordinates_name_the_json_path(extra: dict[str, Any], problem: str) -> None:
    assert _problem({"locations": [_location(**extra)]}).startswith(problem)


def test_bad_travel_settings_name_the_json_path() -> None:
    org = {"id": ORG_A, "name": "A", "time_zone": "UTC", "settings": {"travel_speed_kmh": -5}}
    assert _problem({"organizations": [org]}).startswith(
        "organizations[0].settings.travel_speed_kmh: Input should be greater than 0"
    )


async def test_json_coordinates_are_imported_and_replaced(db: Database, clinic: Clinic) -> None:
    await import_more(db, {"locations": [_location(latitude=40.758, longitude=-73.9855)]})
    r = await _locations(db)
    assert r == [("Lincoln Elementary", 40.758, -73.9855)]
    # A re-import is an upsert of the whole record: leaving the coordinates out clears them.
    await import_more(db, {"locations": [_location()]})
    assert await _locations(db) == [("Lincoln Elementary", None, None)]


async def _locations(db: Database) -> list[tuple[Any, ...]]:
    from sqlalchemy import text

    async with db.read() as conn:
        rows = await conn.execute(
            text(
                "SELECT name, latitude, longitude FROM locations WHERE name = 'Lincoln Elementary'"
            )
        )
        return [tuple(r) for r in rows]


def test_csv_coordinates_are_numbers(database_url: str, tmp_path: Path) -> None:
    here, there = ORG[:-1] + "5", ORG[:-1] + "6"
    locations = (
        "id,organization_id,name,location_type,latitude,longitude\n"
        f"{here},{ORG},Main,clinic,42.6526,-73.7562\n{there},{ORG},Annex,clinic,,\n"
    )
    source = _write(tmp_path / "ok", organizations=ORGANIZATIONS, locations=locations)
    result = _invoke(database_url, str(source))
    assert result.exit_code == 0, result.stderr
    assert _query(
        database_url, "SELECT name, latitude, longitude FROM locations ORDER BY name"
    ) == [("Annex", None, None), ("Main", 42.6526, -73.7562)]
    bad = _write(
        tmp_path / "bad",
        organizations=ORGANIZATIONS,
        locations=locations.replace("42.6526", "north").replace(",,", ",42.1,"),
    )
    refused = _invoke(database_url, str(bad), "--dry-run")
    assert refused.exit_code == 1, refused.stdout
    assert _lines(refused.stderr) == [
        'error: locations.csv:2:latitude: "north" is not a number',
        # The cell that does not read is left out, so the record also lacks its latitude.
        "error: locations.csv:2:longitude: latitude is missing: give latitude and longitude "
        "together",
        "error: locations.csv:3:longitude: longitude is missing: give latitude and longitude "
        "together",
        "error: 3 problems; nothing was imported",
    ]
