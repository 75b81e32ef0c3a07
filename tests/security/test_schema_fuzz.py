"""Schema fuzzing (schemathesis) against /openapi.json of the ASGI app, with a valid token of each role:
positive and negative data for every operation; no 5xx, and every response (status, content type,
headers, body) must be what the OpenAPI document declares.

Default suite: every operation in both modes, about 750 requests per role. `--full` (CI): at least
10,000 per backend."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.python import asgi

from tests.conftest import make_settings
from tests.fixtures import seed_clinic
from therapy_scheduler.app import create_app
from therapy_scheduler.config import Settings
from therapy_scheduler.infra.db import Database

ROLES = ("admin", "scheduler", "therapist")
# Checks that need state or a second identity, which this run does not model.
_EXCLUDED = {"use_after_free", "ensure_resource_availability", "ignored_auth"}


@dataclass
class FuzzStats:
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    by_operation: Counter[str] = field(default_factory=Counter)
    # One entry per operation and mode that failed (the run goes on with the next one, so that one
    # run reports every failing operation, not only the first).
    failures: list[str] = field(default_factory=list)


async def _seed(settings: Settings) -> dict[str, str]:
    database = Database.from_settings(settings)
    try:
        clinic = await seed_clinic(database, settings)
    finally:
        await database.dispose()
    return clinic.tokens


def fuzz(database_url: str, role: str, examples: int) -> FuzzStats:
    settings = make_settings(database_url)
    tokens = asyncio.run(_seed(settings))
    app = create_app(settings)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    client = asgi.get_client(app)  # type: ignore[arg-type]  # FastAPI is an ASGI app
    headers = {"Authorization": f"Bearer {tokens[role]}"}
    stats = FuzzStats()
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the document itself is valid
        operations.append(result.ok())
    assert len(operations) >= 7
    for operation in operations:
        label = operation.label
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @hypothesis.settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=os.environ.get("FUZZ_RANDOM") is None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                response = case.call(session=client, headers=headers)
                stats.requests += 1
                stats.statuses[response.status_code] += 1
                stats.by_operation[label] += 1  # noqa: B023 - run() is called in this iteration
                checks = [c for c in _checks() if c.__name__ not in _EXCLUDED]
                case.validate_response(response, checks=checks, headers=headers)
                assert response.status_code < 500, response.text
                assert response.headers["cache-control"] == ["no-store"]

            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                # No parameters to make invalid (e.g. /healthz): nothing negative to send.
                assert mode is GenerationMode.NEGATIVE
            except (Exception, FailureGroup) as exc:  # reported at the end, with the request
                stats.failures.append(f"{label} [{mode.value}]: {type(exc).__name__}: {exc}")
    return stats


def _checks() -> list[Any]:
    from schemathesis import checks as core
    from schemathesis.specs.openapi import checks as openapi

    return [
        core.not_a_server_error,
        openapi.status_code_conformance,
        openapi.content_type_conformance,
        openapi.response_headers_conformance,
        openapi.response_schema_conformance,
        openapi.negative_data_rejection,
        openapi.missing_required_header,
        openapi.unsupported_method,
    ]


def _report(stats: FuzzStats, record: Callable[[str, object], None]) -> None:
    record(
        "measurement",
        f"fuzz requests={stats.requests} "
        f"5xx={sum(n for s, n in stats.statuses.items() if s >= 500)} "
        f"statuses={dict(sorted(stats.statuses.items()))}",
    )


@pytest.mark.parametrize("role", ROLES)
def test_schema_fuzz_small(
    request: pytest.FixtureRequest,
    database_url: str,
    role: str,
    record_property: Callable[[str, object], None],
) -> None:
    if request.config.getoption("--full"):
        pytest.skip("the full run below covers the same operations with more examples")
    stats = fuzz(database_url, role, examples=5)
    _report(stats, record_property)
    assert stats.failures == []
    assert stats.requests >= 700  # every operation, both modes (761 at the time of writing)
    assert sum(n for s, n in stats.statuses.items() if s >= 500) == 0


@pytest.mark.slow
@pytest.mark.parametrize("role", ROLES)
def test_schema_fuzz_full(
    database_url: str, role: str, record_property: Callable[[str, object], None]
) -> None:
    # About 115 requests per example count (every operation, positive and negative): 35 gives about
    # 4,000 per role, 12,000 per backend, which keeps the run inside CI's time budget.
    # FUZZ_EXAMPLES=450 (with FUZZ_RANDOM=1 for fresh seeds) digs deeper on a developer machine.
    stats = fuzz(database_url, role, examples=int(os.environ.get("FUZZ_EXAMPLES", "35")))
    _report(stats, record_property)
    assert stats.failures == []
    assert stats.requests >= 3_400  # x 3 roles: at least 10,000 per backend
    assert sum(n for s, n in stats.statuses.items() if s >= 500) == 0
