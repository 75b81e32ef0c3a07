"""Column helpers shared by the model modules."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from sqlalchemy import ForeignKey, Uuid
from sqlalchemy.orm import mapped_column

from therapy_scheduler.kit.time import utcnow
from therapy_scheduler.models.base import UTCDateTime

UUIDPK = Annotated[uuid.UUID, mapped_column(Uuid, primary_key=True, default=uuid.uuid4)]
OrgFK = Annotated[
    uuid.UUID, mapped_column(Uuid, ForeignKey("organizations.id", ondelete="CASCADE"), index=False)
]
Instant = Annotated[datetime, mapped_column(UTCDateTime())]
CreatedAt = Annotated[datetime, mapped_column(UTCDateTime(), default=utcnow)]
