"""Small shared tools: time zones, pagination cursors, JSON, caching."""
