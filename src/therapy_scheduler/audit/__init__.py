"""The audit log: who changed what and who viewed which client's sessions (SPEC §7.4)."""
