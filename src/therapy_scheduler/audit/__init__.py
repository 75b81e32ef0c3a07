"""The audit log: who changed what and who viewed which client's sessions (docs/AUDIT_AND_FEEDS.md)."""
