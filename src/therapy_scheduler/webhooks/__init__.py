"""Webhooks (docs/WEBHOOKS.md): endpoints admins register, and the dispatcher that delivers the
outbox's events to them, signed, at least once, ids only."""
