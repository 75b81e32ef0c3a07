"""Rendering a therapist's sessions as an iCalendar (RFC 5545) document.

PHI minimisation: an event names the service code and the client's initials ("ABA 97153 \u2013 C.C."), the
location type and nothing else: no full names, diagnosis, notes, emails or phone numbers.

Cancelled sessions are omitted. A recurring series whose booking kept its recurrence rule is one VEVENT
with RRULE, and EXDATE for every instance that is not (or no longer) a live session matching the series;
live sessions of the series that differ (moved, another service or length) are separate VEVENTs. The
result always shows exactly the therapist's live sessions, whatever happened to the series since.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, Timezone, vRecur

from therapy_scheduler.domain.vocab import LOCATION_TYPES, SERVICE_CODES
from therapy_scheduler.kit.rrule import local_instances, local_until, parse_rule
from therapy_scheduler.kit.time import zone

PRODID = "-//therapy-scheduler//calendar feed//EN"
UID_DOMAIN = "therapy-scheduler"
EN_DASH = "\u2013"
MAX_EXPANSION = 400  # bookings allow 200 instances; a longer rule is not trusted as a series


@dataclass(frozen=True)
class FeedSession:
    id: uuid.UUID
    client_id: uuid.UUID
    client_name: str
    service_code: str
    location_type: str | None
    start_time: datetime
    end_time: datetime
    series_id: uuid.UUID | None
    updated_at: datetime


@dataclass(frozen=True)
class SeriesRecurrence:
    """The recurrence a series was booked with: `rrule` expanded from `dtstart` in `time_zone`."""

    series_id: uuid.UUID
    rrule: str
    time_zone: str
    dtstart: datetime  # UTC instant of the series' first instance


def initials(full_name: str) -> str:
    """ "Casey Cole" → "C.C.", "Mary Ann Smith" → "M.S.": first and last name only."""
    words = [w for w in full_name.split() if any(ch.isalpha() for ch in w)]
    if not words:
        return "?"
    picked = [words[0]] if len(words) == 1 else [words[0], words[-1]]
    return "".join(next(ch for ch in w if ch.isalpha()).upper() + "." for w in picked)


def title(session: FeedSession) -> str:
    return f"ABA {session.service_code} {EN_DASH} {initials(session.client_name)}"


def _description(session: FeedSession) -> str:
    service = SERVICE_CODES.get(session.service_code)
    label = f" ({service.label})" if service else ""
    where = LOCATION_TYPES.get(session.location_type or "", "Not set")
    return f"Service {session.service_code}{label}. Location: {where}."


def _series_key(s: FeedSession) -> tuple[Any, ...]:
    return (s.client_id, s.end_time - s.start_time, s.service_code, s.location_type)


@dataclass
class _Master:
    recurrence: SeriesRecurrence
    tz: ZoneInfo
    rule: str
    first: datetime  # local, aware
    last: datetime  # local, aware
    example: FeedSession
    duration: timedelta
    exdates: list[datetime]
    updated_at: datetime


def _expand(recurrence: SeriesRecurrence) -> tuple[ZoneInfo, str, list[datetime]] | None:
    """Instances (local, aware) of the series' rule, or None when it cannot be trusted."""
    try:
        tz = zone(recurrence.time_zone)
        rule = parse_rule(recurrence.rrule)
        start_local = recurrence.dtstart.astimezone(tz).replace(tzinfo=None)
        naive = local_instances(rule, start_local, tz, limit=MAX_EXPANSION)
    except (ValueError, TypeError, OverflowError):
        return None  # outside the rules a booking accepts (RuleError is a ValueError)
    if len(naive) > MAX_EXPANSION:
        return None
    if not naive or naive[0] != start_local:
        return None  # DTSTART not in step with the rule: clients would disagree on the instances
    instances = [n.replace(tzinfo=tz, fold=0) for n in naive]
    out_rule = rule.text
    until = local_until(rule, tz)
    if until is not None:
        utc_until = until.replace(tzinfo=tz, fold=0).astimezone(UTC)
        out_rule += ";UNTIL=" + utc_until.strftime("%Y%m%dT%H%M%SZ")
    return tz, out_rule, instances


def _plan_series(
    recurrence: SeriesRecurrence, live: list[FeedSession]
) -> tuple[_Master | None, list[FeedSession]]:
    """Split a series' live sessions into one RRULE master and the sessions it does not cover."""
    expanded = _expand(recurrence)
    if expanded is None or not live:
        return None, live
    tz, rule, instances = expanded
    key, _ = Counter(_series_key(s) for s in live).most_common(1)[0]
    candidates = {s.start_time: s for s in live if _series_key(s) == key}
    covered: set[uuid.UUID] = set()
    exdates: list[datetime] = []
    for local in instances:
        match = candidates.get(local.astimezone(UTC))
        if match is None:
            exdates.append(local)
        else:
            covered.add(match.id)
    if not covered:
        return None, live
    example = next(s for s in live if s.id in covered)
    master = _Master(
        recurrence=recurrence,
        tz=tz,
        rule=rule,
        first=instances[0],
        last=instances[-1],
        example=example,
        duration=example.end_time - example.start_time,
        exdates=exdates,
        updated_at=max(s.updated_at for s in live if s.id in covered),
    )
    return master, [s for s in live if s.id not in covered]


def render_calendar(
    *,
    sessions: list[FeedSession],
    recurrences: dict[uuid.UUID, SeriesRecurrence],
    therapist_zone: str,
    window: tuple[datetime, datetime],
) -> bytes:
    """The ICS document of `sessions` (live ones only), with series compacted where possible."""
    tz = zone(therapist_zone)
    by_series: dict[uuid.UUID, list[FeedSession]] = defaultdict(list)
    singles: list[FeedSession] = []
    for s in sessions:
        if s.series_id is not None and s.series_id in recurrences:
            by_series[s.series_id].append(s)
        else:
            singles.append(s)
    masters: list[_Master] = []
    for series_id, live in by_series.items():
        master, rest = _plan_series(recurrences[series_id], live)
        if master is not None:
            masters.append(master)
        singles.extend(rest)
    window_start, window_end = window
    singles = [s for s in singles if s.start_time < window_end and s.end_time > window_start]

    events: list[tuple[datetime, str, Event]] = []
    spans: dict[str, list[datetime]] = defaultdict(list)
    for s in singles:
        uid = f"{s.id}@{UID_DOMAIN}"
        start, end = s.start_time.astimezone(tz), s.end_time.astimezone(tz)
        event = _event(uid, s, start, end, s.updated_at)
        events.append((s.start_time, uid, event))
        spans[therapist_zone] += [start, end]
    for m in masters:
        uid = f"series-{m.recurrence.series_id}@{UID_DOMAIN}"
        end = (m.first.astimezone(UTC) + m.duration).astimezone(m.tz)
        event = _event(uid, m.example, m.first, end, m.updated_at)
        event.add("rrule", vRecur.from_ical(m.rule))
        if m.exdates:
            event.add("exdate", m.exdates)
        events.append((m.first.astimezone(UTC), uid, event))
        spans[m.recurrence.time_zone] += [m.first, m.last + m.duration]

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", "Therapy sessions")
    calendar.add("x-wr-timezone", therapist_zone)
    # Ask subscribing clients to poll hourly, not every few minutes (feeds are rate limited per IP).
    calendar.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", "PT1H")
    if not spans:
        spans[therapist_zone] = [window_start.astimezone(tz), window_end.astimezone(tz)]
    for name in sorted(spans):
        calendar.add_component(_vtimezone(name, spans[name]))
    for _, _, event in sorted(events, key=lambda e: (e[0], e[1])):
        calendar.add_component(event)
    body: bytes = calendar.to_ical()
    return body


def _vtimezone(name: str, instants: list[datetime]) -> Timezone:
    # A year past the last event, so that clients extending a series or moving an event still
    # find the zone's rules; the cost is two lines per year.
    first: date = min(instants).date() - timedelta(days=7)
    last: date = max(instants).date() + timedelta(days=366)
    return Timezone.from_tzinfo(zone(name), first_date=first, last_date=last)


def _event(uid: str, s: FeedSession, start: datetime, end: datetime, stamp: datetime) -> Event:
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp.astimezone(UTC))
    event.add("last-modified", stamp.astimezone(UTC))
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", title(s))
    event.add("description", _description(s))
    event.add("location", LOCATION_TYPES.get(s.location_type or "", "Not set"))
    event.add("status", "CONFIRMED")
    event.add("transp", "OPAQUE")
    return event
