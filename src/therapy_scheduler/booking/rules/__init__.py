"""Every rule a booking must pass, in one folder (docs/BOOKING.md):

- `apply.py`: `check_slots`, the rules in their order under the people locks, shared by a new hold, a
  reschedule and a reactivation; the cap on a user's active holds;
- `checks.py`: the checks themselves (availability, time off, break between places, slot conflicts,
  authorization units) as pure functions over data loaded under the locks;
- `states.py`: the session state machine (which action takes which status where);
- `locks.py`: the per-person and per-user locks that serialize bookings;
- `constraints.py`: the database's exclusion constraints (the backstop) mapped to the same 409s.
"""
