"""Per-therapist calendar feeds (ICS) with PHI-minimised events (docs/AUDIT_AND_FEEDS.md)."""
