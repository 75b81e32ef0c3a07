"""The waitlist: clients waiting for a service and the offers of freed slots (docs/WAITLIST.md)."""
