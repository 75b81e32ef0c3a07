"""The demo clinic's lifecycle history (demo/activity.py), made through the real services, on
SQLite and PostgreSQL: cancellation records, recurring series with their RRULE, a rescheduled
occurrence, a series cancelled from an occurrence on, late cancellations that keep their units."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from sqlalchemy import select

from therapy_scheduler.demo.activity import SERIES_WEEKS, add_activity
from therapy_scheduler.demo.clinic import DEMO_ORG_ID, DemoUsers, build_demo
from therapy_scheduler.importing.service import run_import
from therapy_scheduler.infra.db import Database
from therapy_scheduler.kit.time import utcnow
from therapy_scheduler.models import AuditEvent, Cancellation, Hold, Session


async def test_demo_activity(db: Database) -> None:
    today: date = utcnow().date()
    await run_import(db, build_demo(therapists=10, clients=40, weeks=2, seed=3, today=today))
    added = await add_activity(
        db, organization_id=DEMO_ORG_ID, scheduler_email=DemoUsers.scheduler, seed=3
    )
    assert added["recurring series"] == 3
    assert added["rescheduled"] == 1
    assert added["series cancelled from an occurrence"] == 1
    async with db.read() as conn:
        cancelled = set(
            (await conn.execute(select(Session.id).where(Session.status == "cancelled"))).scalars()
        )
        records = (
            await conn.execute(
                select(
                    Cancellation.session_id,
                    Cancellation.policy,
                    Cancellation.late_cancellation,
                    Cancellation.units_released,
                )
            )
        ).all()
        series: dict[object, list[str]] = defaultdict(list)
        for r in await conn.execute(
            select(Session.series_id, Session.status).where(Session.series_id.is_not(None))
        ):
            series[r.series_id].append(r.status)
        rules = (
            (await conn.execute(select(Hold.recurrence).where(Hold.series_id.is_not(None))))
            .scalars()
            .all()
        )
        moved = (
            (
                await conn.execute(
                    select(AuditEvent.details).where(AuditEvent.action == "hold.confirm")
                )
            )
            .scalars()
            .all()
        )
        kept = (
            (
                await conn.execute(
                    select(Session.consumes_units)
                    .join(Cancellation, Cancellation.session_id == Session.id)
                    .where(Cancellation.policy == "strict")
                )
            )
            .scalars()
            .all()
        )
    # Every cancelled session has its record; some imported ones were late.
    assert {r.session_id for r in records} == cancelled
    assert any(r.late_cancellation and r.policy == "standard" for r in records)
    assert any(not r.late_cancellation for r in records)
    # Three weekly series; the second was cancelled from its fourth occurrence on.
    assert sorted(len(v) for v in series.values()) == [SERIES_WEEKS] * 3
    statuses = sorted(sorted(v) for v in series.values())
    assert ["cancelled"] * 3 + ["scheduled"] * 3 in statuses
    assert sorted(rules, key=str) == [{"rrule": "FREQ=WEEKLY;COUNT=6", "exdates": []}] * 3
    assert sum(1 for d in moved if d["rescheduled"]) == 1
    # Late cancellations under "strict" keep their units.
    assert kept == [True] * added["late cancellations"]
    # BCBAs' supervisions inside RBTs' 97153 sessions, visible on the board.
    async with db.read() as conn:
        supervising = (
            await conn.execute(
                select(Session.client_id, Session.start_time, Session.end_time).where(
                    Session.supervises == "97153", Session.service_code == "97155"
                )
            )
        ).all()
        direct = (
            await conn.execute(
                select(Session.client_id, Session.start_time, Session.end_time).where(
                    Session.service_code == "97153", Session.status != "cancelled"
                )
            )
        ).all()
    assert added["supervision sessions"] >= 2
    assert len(supervising) == added["supervision sessions"]
    for s in supervising:
        assert any(
            d.client_id == s.client_id and d.start_time <= s.start_time and s.end_time <= d.end_time
            for d in direct
        )
    # Running it again adds nothing.
    again = await add_activity(
        db, organization_id=DEMO_ORG_ID, scheduler_email=DemoUsers.scheduler, seed=3
    )
    assert again == {"cancellation records": 0}


async def test_demo_waitlist_offers_a_cancelled_demo_session(db: Database, client: object) -> None:
    """The demo's waiting clients fit the slots its sessions free (docs/WAITLIST.md)."""
    import uuid

    from therapy_scheduler.auth.principal import load_principal
    from therapy_scheduler.booking.cancel import cancel_session
    from therapy_scheduler.booking.schemas import CancelBody
    from therapy_scheduler.calendar import freed
    from therapy_scheduler.demo.queries import user_by_email
    from therapy_scheduler.models import WaitlistEntry, WaitlistOffer

    today: date = utcnow().date()
    await run_import(db, build_demo(therapists=10, clients=40, weeks=2, seed=3, today=today))
    added = await add_activity(
        db, organization_id=DEMO_ORG_ID, scheduler_email=DemoUsers.scheduler, seed=3
    )
    assert added["waitlist entries"] >= 4
    now = utcnow()
    async with db.read() as conn:
        waiting = (await conn.execute(select(WaitlistEntry.therapist_ids))).scalars().all()
        therapists = {uuid.UUID(t) for ids in waiting for t in ids or []}
        upcoming = (
            (
                await conn.execute(
                    select(Session.id)
                    .where(
                        Session.status == "scheduled",
                        Session.therapist_id.in_(therapists),
                        Session.start_time > now + timedelta(hours=2),
                    )
                    .order_by(Session.start_time)
                    .limit(3)
                )
            )
            .scalars()
            .all()
        )
        user = await user_by_email(conn, organization_id=DEMO_ORG_ID, email=DemoUsers.scheduler)
        assert user is not None
        principal = await load_principal(conn, user.id)
    assert upcoming
    for session_id in upcoming:
        await cancel_session(
            db=db,
            principal=principal,
            body=CancelBody(session_id=session_id, reason="client_illness"),
            now=utcnow(),
            request_id="test",
        )
    await freed.drain()
    async with db.read() as conn:
        offers = (
            await conn.execute(select(WaitlistOffer.id).where(WaitlistOffer.status == "open"))
        ).all()
    assert offers
