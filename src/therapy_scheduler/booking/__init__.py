"""The write side: hold, confirm, cancel, recurrence, authorization units."""
