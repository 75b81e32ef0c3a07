"""HTTP routes of the admin API, one module per resource (thin: parse, call one service function)."""
