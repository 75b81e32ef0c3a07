from __future__ import annotations

from sqlalchemy import BigInteger, SmallInteger
from sqlalchemy.orm import Mapped, mapped_column

from therapy_scheduler.models._columns import OrgFK
from therapy_scheduler.models.base import Base


class ChangeCounter(Base):
    """How many write transactions have changed an organization's data, in a few stripes.

    Every write transaction adds 1 to one stripe of each organization it touched, as its last
    statement before COMMIT; the organization's version is the sum of its stripes (absent rows
    count 0). The stripes spread concurrent writers over several rows (docs/DECISIONS.md,
    "Conditional requests")."""

    __tablename__ = "change_counters"

    organization_id: Mapped[OrgFK] = mapped_column(primary_key=True)
    stripe: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
