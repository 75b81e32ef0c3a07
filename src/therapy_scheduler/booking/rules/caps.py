"""Weekly caps of authorized services (docs/BOOKING.md, docs/DECISIONS.md): a payer allows at most so
many units, or hours, of a service in one week: the client's week in the organization's time zone
(calendar/weeks.py)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from therapy_scheduler.booking.errors import WeeklyCapExceeded
from therapy_scheduler.booking.occurrences import Occurrence
from therapy_scheduler.booking.queries.caps import Spent
from therapy_scheduler.booking.rules.checks import Problem, UnitPlan
from therapy_scheduler.calendar.units import UnitBalance, UnitKey
from therapy_scheduler.calendar.weeks import week_of


def capped(balance: UnitBalance | None) -> bool:
    return balance is not None and (
        balance.weekly_cap_units is not None or balance.weekly_cap_minutes is not None
    )


Week = tuple[uuid.UUID, date]  # (authorization, Monday)


@dataclass(frozen=True)
class WeekSpending:
    """What the client's sessions and holds already spend per authorization and week: (units,
    minutes). Built once, it serves a hold's occurrences and every slot of the free-slot engine."""

    totals: Mapping[Week, tuple[float, float]]


def spending_by_week(spent: Iterable[Spent], organization_zone: ZoneInfo) -> WeekSpending:
    totals: dict[Week, list[float]] = defaultdict(lambda: [0, 0])
    for s in spent:
        week = totals[(s.authorization_id, week_of(s.start, organization_zone))]
        week[0] += s.units
        week[1] += (s.end - s.start).total_seconds() / 60
    return WeekSpending({key: (units, minutes) for key, (units, minutes) in totals.items()})


def weekly_cap_problems(
    occurrences: list[Occurrence],
    plans: list[UnitPlan],
    *,
    service_code: str,
    balances: dict[UnitKey, UnitBalance],
    spent: list[Spent] | WeekSpending,
    organization_zone: ZoneInfo,
    named_in: ZoneInfo,
) -> list[Problem]:
    """Occurrences that take their authorization's service over its weekly cap, counting what the
    client's sessions and holds already spend that week (`spent`, or its sums by week) and the
    earlier occurrences of this request. Every planned occurrence counts, so that under `warn` a
    week stays over its cap."""
    weeks = spent if isinstance(spent, WeekSpending) else spending_by_week(spent, organization_zone)
    # What this request's earlier occurrences add, per (authorization, Monday): [units, minutes]
    added: dict[Week, list[float]] = defaultdict(lambda: [0, 0])
    problems: list[Problem] = []
    for index, (o, plan) in enumerate(zip(occurrences, plans, strict=True)):
        if plan.authorization_id is None:
            continue
        balance = balances.get((plan.authorization_id, service_code))
        if balance is None or not capped(balance):
            continue
        monday = week_of(o.start, organization_zone)
        key = (plan.authorization_id, monday)
        before = weeks.totals.get(key, (0, 0))
        mine = added[key]
        mine[0] += plan.units
        mine[1] += o.minutes
        week = (before[0] + mine[0], before[1] + mine[1])
        cap_units, cap_minutes = balance.weekly_cap_units, balance.weekly_cap_minutes
        if cap_units is not None and week[0] > cap_units:
            over = f"{int(week[0])} units, over the weekly cap of {cap_units} units"
            private: dict[str, object] = {"weekly_cap_units": cap_units, "week_units": week[0]}
        elif cap_minutes is not None and week[1] > cap_minutes:
            over = f"{_hours(week[1])} hours, over the weekly cap of {_hours(cap_minutes)} hours"
            private = {"weekly_cap_hours": cap_minutes / 60, "week_hours": week[1] / 60}
        else:
            continue
        problems.append(
            Problem(
                WeeklyCapExceeded,
                f"The occurrence on {o.label(named_in)} brings service {service_code} to {over} "
                f"in the week of Monday {monday.isoformat()}",
                index,
                {"reason": "weekly_cap", "service_code": service_code, "week": monday.isoformat()},
                {"authorization_id": str(plan.authorization_id), **private},
            )
        )
    return problems


def _hours(minutes: float) -> str:
    return f"{minutes / 60:g}"
