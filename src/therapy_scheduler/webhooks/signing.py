"""Secrets and signatures of the Standard Webhooks specification, by the `standardwebhooks` library
(docs/WEBHOOKS.md). The secret is never logged; it is shown once, when issued."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

from standardwebhooks.webhooks import Webhook


def new_secret() -> str:
    """`whsec_` and 32 random bytes in base64, the form the specification's libraries accept."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def signature_header(
    secrets_in_use: list[str], *, message_id: str, timestamp: datetime, body: str
) -> str:
    """`webhook-signature`: one `v1,<signature>` per secret in use (two during a rotation's overlap),
    separated by spaces; a receiver accepts the message when any of them verifies."""
    return " ".join(
        Webhook(secret).sign(msg_id=message_id, timestamp=timestamp, data=body)
        for secret in secrets_in_use
    )
