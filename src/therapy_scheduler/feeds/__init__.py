"""Per-therapist calendar feeds (ICS) with PHI-minimised events (SPEC §7.5)."""
