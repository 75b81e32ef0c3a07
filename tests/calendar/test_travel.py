"""The travel-time computation of calendar/travel.py (docs/BOOKING.md "Travel time"): pure, no database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from therapy_scheduler.calendar.travel import (
    MAX_TRAVEL_MINUTES,
    Coordinates,
    Place,
    Visit,
    decided_by_locations,
    great_circle_km,
    minutes_by_distance,
    rules_from_settings,
    short_gap,
)

A, B, C = uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3)
DOWNTOWN, MIDTOWN = Coordinates(40.7128, -74.0060), Coordinates(40.7580, -73.9855)


def test_great_circle_distances_by_hand() -> None:
    # One degree of longitude on the equator: 2 * pi * 6371.0088 / 360 km.
    assert round(great_circle_km(Coordinates(0, 0), Coordinates(0, 1)), 3) == 111.195
    assert round(great_circle_km(Coordinates(0, 179.5), Coordinates(0, -179.5)), 3) == 111.195
    assert round(great_circle_km(Coordinates(90, 0), Coordinates(-90, 0))) == 20015
    assert round(great_circle_km(DOWNTOWN, MIDTOWN), 2) == 5.31
    assert great_circle_km(DOWNTOWN, DOWNTOWN) == 0


def test_minutes_round_up_to_five_then_add_the_margin() -> None:
    assert minutes_by_distance(5.31, 30, 5) == 20  # 10.6 minutes → 15, + 5
    assert minutes_by_distance(5.0, 30, 5) == 15  # exactly 10 minutes stays 10
    assert minutes_by_distance(0, 30, 5) == 5
    assert minutes_by_distance(0.01, 30, 0) == 5
    assert minutes_by_distance(20, 60, 0) == 20
    assert minutes_by_distance(500, 30, 5) == MAX_TRAVEL_MINUTES


def test_which_source_applies() -> None:
    rules = rules_from_settings(
        speed_kmh=30,
        margin_minutes=5,
        type_defaults=[("home", "clinic", 35), ("school", "school", 10)],
        matrix={(A, C): 50},
        coordinates={A: DOWNTOWN, B: MIDTOWN},
    )
    clinic_a, school_b = Place(A, "clinic"), Place(B, "school")
    assert rules.minutes(clinic_a, school_b) == 20  # coordinates
    assert rules.minutes(school_b, clinic_a) == 20
    assert rules.minutes(Place(C, "home"), clinic_a) == 50  # the matrix, either order
    assert rules.minutes(Place(B, "home"), Place(C, "clinic")) == 35  # C has no coordinates
    assert rules.minutes(Place(None, "home"), clinic_a) == 35  # no location: the types
    assert rules.minutes(Place(None, "school"), Place(None, "school")) == 0  # same place
    assert rules.minutes(school_b, Place(C, "school")) == 10
    assert rules.minutes(clinic_a, Place(B, "telehealth")) == 0
    assert rules.minutes(Place(None, "telehealth"), Place(C, "home")) == 0
    assert rules.minutes(clinic_a, clinic_a) == 0
    assert rules.minutes(Place(None, None), clinic_a) == 0  # unknown place: no default


def _at(minutes: int) -> datetime:
    return datetime(2027, 3, 14, 5, 0, tzinfo=UTC) + timedelta(minutes=minutes)


def test_short_gap_only_when_travel_binds() -> None:
    rules = rules_from_settings(
        speed_kmh=30, margin_minutes=5, type_defaults=[], coordinates={A: DOWNTOWN, B: MIDTOWN}
    )
    first = Visit(_at(0), _at(60), Place(A, "clinic"))
    second = Visit(_at(75), _at(120), Place(B, "school"))
    found = short_gap(second, first, rules, buffer_minutes=15)
    assert found is not None
    assert (found.before, found.after, found.gap_minutes, found.travel_minutes) == (
        first,
        second,
        15,
        20,
    )
    assert short_gap(first, second, rules, buffer_minutes=20) is None  # the break binds
    later = Visit(_at(80), _at(120), Place(B, "school"))
    assert short_gap(first, later, rules, buffer_minutes=0) is None
    overlapping = Visit(_at(30), _at(90), Place(B, "school"))
    assert short_gap(first, overlapping, rules, buffer_minutes=0) is None


coordinates = st.builds(
    Coordinates,
    st.floats(min_value=-90, max_value=90, allow_nan=False),
    st.floats(min_value=-180, max_value=180, allow_nan=False),
)


@given(coordinates, coordinates, st.floats(min_value=0.1, max_value=200), st.integers(0, 120))
def test_travel_is_symmetric_bounded_and_on_the_grid(
    here: Coordinates, there: Coordinates, speed: float, margin: int
) -> None:
    rules = rules_from_settings(
        speed_kmh=speed, margin_minutes=margin, type_defaults=[], coordinates={A: here, B: there}
    )
    there_and_back = rules.minutes(Place(A, "home"), Place(B, "home"))
    assert there_and_back == rules.minutes(Place(B, "home"), Place(A, "home"))
    assert margin <= there_and_back <= MAX_TRAVEL_MINUTES or there_and_back == MAX_TRAVEL_MINUTES
    if there_and_back < MAX_TRAVEL_MINUTES:
        assert (there_and_back - margin) % 5 == 0
        assert (there_and_back - margin) * speed / 60 >= great_circle_km(here, there) - 1e-6


_TYPES = ("clinic", "home", "school", "telehealth")


@given(
    located=st.dictionaries(st.sampled_from([A, B, C]), st.just(DOWNTOWN), max_size=3),
    far=st.booleans(),
    defaults=st.lists(
        st.tuples(st.sampled_from(_TYPES[:3]), st.sampled_from(_TYPES[:3]), st.integers(0, 240)),
        max_size=3,
    ),
    entry=st.one_of(st.none(), st.integers(0, 240)),
    buffer=st.integers(0, 240),
)
def test_no_pair_needs_more_than_the_buffer_unless_may_exceed_says_so(
    located: dict[uuid.UUID, Coordinates],
    far: bool,
    defaults: list[tuple[str, str, int]],
    entry: int | None,
    buffer: int,
) -> None:
    # The schedule's travel conflicts stop early on `may_exceed`: it must never hide a trip.
    coordinates = {k: MIDTOWN if far and k == B else v for k, v in located.items()}
    rules = rules_from_settings(
        speed_kmh=30,
        margin_minutes=5,
        type_defaults=defaults,
        matrix={(A, C): entry} if entry is not None else {},
        coordinates=coordinates,
    )
    places = [Place(i, t) for i in (A, B, C, None) for t in _TYPES]
    longest = max(rules.minutes(p, q) for p in places for q in places)
    if not rules.may_exceed(buffer):
        assert longest <= buffer


_PLACES = st.builds(Place, st.sampled_from([A, B, C, None]), st.sampled_from((*_TYPES, None)))


@given(a=_PLACES, b=_PLACES, entry=st.integers(0, 240), defaults=st.integers(0, 240))
def test_only_pairs_of_known_locations_need_the_locations_read(
    a: Place, b: Place, entry: int, defaults: int
) -> None:
    # `travel_rules_for` skips its statement unless `decided_by_locations`: without it, the rules
    # from the settings alone must give the same minutes as rules that know every location.
    settings_only = rules_from_settings(
        speed_kmh=30, margin_minutes=5, type_defaults=[("clinic", "home", defaults)]
    )
    knowing = rules_from_settings(
        speed_kmh=30,
        margin_minutes=5,
        type_defaults=[("clinic", "home", defaults)],
        matrix={(A, B): entry},
        coordinates={A: DOWNTOWN, C: MIDTOWN},
    )
    if not decided_by_locations(a, b):
        assert knowing.minutes(a, b) == settings_only.minutes(a, b)
