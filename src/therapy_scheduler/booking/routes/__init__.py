"""HTTP routes of the write side, one module per resource (thin: parse, call one service)."""
