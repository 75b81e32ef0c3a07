from __future__ import annotations

import httpx

from tests.fixtures import Clinic


async def test_sessions_list_answers(client: httpx.AsyncClient, clinic: Clinic) -> None:
    r = await client.get("/get-sessions-optimized", headers=clinic.headers("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["data"]["summary"]["total_sessions"] == 9
