"""`ReadRoute` (auth/read_route.py) serves get-sessions-optimized without FastAPI's generic handler:
its query model reads and validates a query string exactly as FastAPI's `Annotated[model, Query()]`
does (the same values, the same errors), a bad token is still answered before a bad query, and the
OpenAPI document still lists the parameters."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Query
from fastapi.exceptions import RequestValidationError

from tests.fixtures import T1, Clinic
from therapy_scheduler.auth.read_route import QueryModel
from therapy_scheduler.schedule.schemas import SessionsParams

QUERIES = [
    "",
    f"therapist_id={T1}&limit=10&page=2",
    "status=scheduled&status=completed,no_show",
    "status=",
    "status=bogus",
    "limit=0",
    "limit=abc&page=-1",
    "limit=1&limit=2",
    "therapist_id=not-a-uuid",
    "therapist_id=",
    "start_date=2027-03-10&end_date=2027-03-01",
    "start_date=2027-3-1",
    "start_date=2020-01-01&end_date=2027-01-01",
    "location_type=clinic&time_zone=Asia/Tokyo",
    "location_type=moon&time_zone=Mars/Base",
    "cursor=",
    "unknown=1&other=a&other=b",
    "limit=2&status=completed&unknown=x&limit=1&status=scheduled",
    "location_type=%63linic&time_zone=America%2FNew_York&cursor=a+b",
    "&&=&limit=5&=x&cursor=%C3%A9",
    "therapist_id=&therapist_id=" + str(T1),
]


def _reference() -> FastAPI:
    """FastAPI's own reading of the model, for comparison."""
    app = FastAPI()

    @app.get("/reference")
    async def reference(params: Annotated[SessionsParams, Query()]) -> dict[str, Any]:
        return params.model_dump(mode="json")

    @app.exception_handler(RequestValidationError)
    async def errors(_request: Any, exc: RequestValidationError) -> Any:
        from fastapi.responses import JSONResponse

        return JSONResponse({"errors": _comparable(exc.errors())}, status_code=400)

    return app


def _comparable(errors: Any) -> list[dict[str, Any]]:
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]


@pytest.mark.parametrize("query", QUERIES)
async def test_the_query_model_reads_as_fastapi_does(query: str) -> None:
    transport = httpx.ASGITransport(app=_reference())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        expected = await client.get(f"/reference?{query}")
    model = QueryModel(SessionsParams)
    if expected.status_code == 400:
        with pytest.raises(RequestValidationError) as raised:
            model.parse(query.encode())
        assert {"errors": _comparable(raised.value.errors())} == expected.json()
    else:
        assert expected.status_code == 200, expected.text
        assert model.parse(query.encode()).model_dump(mode="json") == expected.json()


async def test_a_bad_token_is_answered_before_a_bad_query(
    client: httpx.AsyncClient, clinic: Clinic
) -> None:
    bad = {"limit": "0", "therapist_id": "nope"}
    r = await client.get("/get-sessions-optimized", params=bad)
    assert r.status_code == 401
    r = await client.get("/get-sessions-optimized", params=bad, headers=clinic.headers("admin"))
    assert r.status_code == 400
    assert r.json()["code"] == "VALIDATION_ERROR"
    fields = {f["field"] for f in r.json()["details"]["fields"]}
    assert fields == {"limit", "therapist_id"}


async def test_the_openapi_document_lists_the_parameters(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    names = [p["name"] for p in paths["/get-sessions-optimized"]["get"]["parameters"]]
    assert names == list(SessionsParams.model_fields)
